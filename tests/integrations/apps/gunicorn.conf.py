from opencdp.integrations.gunicorn import post_fork, post_worker_init, worker_exit  # noqa: F401

graceful_timeout = 20
accesslog = None
