# One image for every Dagster process of a shared deployment: the webserver, the daemon, the code
# server and the run workers (deploy/compose.yaml, deploy/helm/values.yaml; docs/scaling.md).
#   docker build -t retrostride:0.1.0 .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    RETROSTRIDE_HOME=/var/lib/retrostride \
    RETROSTRIDE_INBOX=/var/lib/retrostride/inbox

WORKDIR /opt/retrostride
COPY pyproject.toml README.md workspace.yaml ./
COPY assets assets
COPY connectors connectors
COPY pipelines pipelines
COPY warehouse warehouse
# postgres: Dagster's storage in PostgreSQL; k8s: the Kubernetes run launcher.  DuckDB's extensions
# (ducklake, sqlite, postgres, httpfs) come in as wheels: nothing is downloaded when the image runs.
RUN pip install --no-cache-dir '.[postgres,k8s]' \
 && mkdir -p "$DAGSTER_HOME" "$RETROSTRIDE_HOME" \
 && python -c "from retrostride.pipelines.runs import shipped_instance_config; print(shipped_instance_config(postgres=True), end='')" \
      > "$DAGSTER_HOME/dagster.yaml"

EXPOSE 3000 3030
# The webserver by default; the daemon: `dagster-daemon run -w workspace.yaml`; the code server
# (Helm's user deployment): `dagster api grpc -m retrostride.pipelines.definitions -a defs -h 0.0.0.0 -p 3030`.
CMD ["dagster-webserver", "-w", "workspace.yaml", "-h", "0.0.0.0", "-p", "3000"]
