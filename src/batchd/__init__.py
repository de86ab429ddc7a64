"""batchd: self-hosted AWS Batch service jobs for SageMaker training."""

__version__ = "0.1.0"
