# The batchd image. The Kubernetes backend runs it as the `stage` and `finish` containers of
# every training pod (`batchd container stage|finish`); `batchd serve` runs from it too.
#   docker build -t batchd .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml README.md /tmp/batchd/
COPY src /tmp/batchd/src
# The kubernetes extra: the same image runs `batchd serve --backend kubernetes` in a cluster.
RUN pip install "/tmp/batchd[kubernetes]" && rm -rf /tmp/batchd

# A fixed uid, so a pod's securityContext (runAsUser, fsGroup) can name it. /opt/ml is the
# SageMaker tree the steps write; in a pod it is an emptyDir mounted over this directory.
RUN useradd --create-home --uid 10001 --user-group batchd \
    && mkdir -p /opt/ml \
    && chown -R batchd:batchd /opt/ml
USER 10001:10001
WORKDIR /home/batchd

ENTRYPOINT ["batchd"]
CMD ["--help"]
