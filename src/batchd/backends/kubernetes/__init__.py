"""The Kubernetes backend: training attempts as pods, and the steps batchd runs inside them."""
