#!/usr/bin/env bash
# Resolve the Spark connector jars (Kafka source, Cassandra connector) once, cached, and print
# them comma-separated for `spark-submit --jars` / the spark.jars setting.
#
# Versions: spark.version (spark-sql-kafka-0-10_2.12, must equal the venv's pyspark) and
# spark.cassandra_connector_version, from conf/gaitstream.toml. Jars land in
# $GS_RUNTIME_CACHE_DIR/spark-jars-<hash>/lib (shared by every clone; re-runs are instant).
# Jars pyspark already ships (pyspark/jars) are left out so nothing is on the classpath twice.
# Usage: jars/resolve.sh            -> prints /abs/a.jar,/abs/b.jar,...   (messages on stderr)
set -euo pipefail
GS_SERVICE=spark-jars
source "$(dirname "$0")/../stack/lib.sh"

pom="$GS_ROOT/jars/pom.xml"
pyspark_version=""
if [[ -x "$GS_PY" ]]; then
  pyspark_version="$("$GS_PY" -c 'import importlib.metadata as m; print(m.version("pyspark"))' 2>/dev/null || true)"
fi
if [[ -n "$pyspark_version" && "$pyspark_version" != "$GS_SPARK_VERSION" ]]; then
  echo "[$GS_SERVICE] WARNING: spark.version=$GS_SPARK_VERSION but the venv has pyspark $pyspark_version" >&2
fi

if ! dir="$(gs_maven_lib "$GS_SERVICE" "$pom" \
    -Dspark.version="$GS_SPARK_VERSION" \
    -Dcassandra.connector.version="$GS_SPARK_CASSANDRA_CONNECTOR_VERSION")"; then
  gs_die "could not resolve $pom (spark.version=$GS_SPARK_VERSION," \
    "spark.cassandra_connector_version=$GS_SPARK_CASSANDRA_CONNECTOR_VERSION): is" \
    "org.apache.spark:spark-sql-kafka-0-10_2.12:$GS_SPARK_VERSION on Maven Central? If not, pick a" \
    "spark.version that both Maven Central (that artifact) and PyPI (pyspark) have."
fi

# Safety net behind the pom's exclusions: drop any artifact pyspark ships (whatever version).
shipped=""
for d in "$GS_VENV"/lib/python3*/site-packages/pyspark/jars; do [[ -d "$d" ]] && shipped="$d"; done
jars=()
for jar in "$dir"/lib/*.jar; do
  base="$(basename "$jar" .jar)"; artifact="${base%-*}"
  if [[ -n "$shipped" ]] && compgen -G "$shipped/$artifact-[0-9]*.jar" >/dev/null; then
    echo "[$GS_SERVICE] skipping $base.jar: pyspark ships $artifact" >&2; continue
  fi
  jars+=("$jar")
done
(( ${#jars[@]} > 0 )) || gs_die "no jars in $dir/lib"
(IFS=,; echo "${jars[*]}")
