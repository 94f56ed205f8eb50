"""A shop that sends its customer data to Customer.io and OpenCDP."""
