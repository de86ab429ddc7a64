"""The AWS wire format, driven by botocore's service models."""
