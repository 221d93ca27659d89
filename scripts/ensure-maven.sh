# Sourced by the scripts that fetch artifacts from Maven Central (the embedding model, Kafka):
# installs Apache Maven with apt when it is missing and we are root on Debian, else explains.
if ! command -v mvn >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing maven (apt) to fetch artifacts from Maven Central ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q maven >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q maven >/dev/null; }
  else
    echo "mvn (Apache Maven) is required: apt-get install maven" >&2
    exit 1
  fi
fi
