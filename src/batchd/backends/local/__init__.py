"""The local execution backend: SageMaker training jobs as process groups on this machine.

Modules, one noun each: ``payload`` (the request, validated), ``workspace`` (the per-attempt
tree, its config files and logs), ``objectstore`` (the ``s3://`` and ``file://`` URIs payloads
name), ``channels`` and ``sourcedir`` (input staging), ``hostnames`` (making ``algo-N``
resolve), ``commands`` (what runs, with which environment), ``processes`` (process groups,
logs, stop), ``artifacts`` (model and output upload), ``attempt`` (one attempt's lifecycle),
``recovery`` (records of running attempts, and what a killed server left running),
``reaper`` (stopping those leftovers) and ``backend`` (``LocalBackend``, the ``Backend`` protocol).
"""

from batchd.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
