from opencdp.integrations.gunicorn import post_fork, worker_exit  # noqa: F401

graceful_timeout = 20
accesslog = None
