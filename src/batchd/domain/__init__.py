"""Domain objects of batchd: resources, service jobs, their statuses and pure rules.

Field names are the snake_case forms of the AWS Batch model's member names, so that
``codec`` and the protocol serializer move them to and from the wire without per-field code.
"""
