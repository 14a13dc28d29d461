#!/usr/bin/env bash
# The HTTP API with curl and jq, against a running `npm start`:
#   bash examples/curl.sh [image.png]
# PALIGEMMA_URL (default http://localhost:8787) picks the server, MODEL (default paligemma-shapes) the model id for
# the OpenAI route; API_KEY is sent as a bearer token when set.
# examples/shapes.png is an eval image of the default model (a blue circle and a yellow square, 160×120).
set -euo pipefail
BASE=${PALIGEMMA_URL:-http://localhost:8787}
IMG=${1:-$(dirname "$0")/shapes.png}
MODEL=${MODEL:-paligemma-shapes}
AUTH=()
if [ -n "${API_KEY:-}" ]; then AUTH=(-H "authorization: Bearer $API_KEY"); fi
post() { curl -sS --fail-with-body "${AUTH[@]}" "$@"; }

# 1. Upload the image once: its soft tokens are cached in KV under an id made from its bytes.
IMAGE_ID=$(post "$BASE/v1/images" -H 'content-type: image/png' --data-binary @"$IMG" | jq -r .image_id)
echo "image_id: $IMAGE_ID"

# 2. A prompt about that image, one JSON answer (stream: false).
jq -n --arg id "$IMAGE_ID" '{image_id: $id, prompt: "caption en", stream: false}' |
  post "$BASE/v1/generate" -H 'content-type: application/json' -d @- | jq -r '"caption: " + .text'

# 3. A task instead of a prompt: detection, with boxes in the image's own pixels.
jq -n --arg id "$IMAGE_ID" '{image_id: $id, task: "detect", objects: ["circle"], stream: false}' |
  post "$BASE/v1/generate" -H 'content-type: application/json' -d @- |
  jq -r '.detections[] | "detect: \(.label) \(.box.x1 | round),\(.box.y1 | round) \(.box.x2 | round),\(.box.y2 | round)"'

# 4. OpenAI's chat completions with the image inline (a data URL), streamed as Server-Sent Events.
B64=$(base64 < "$IMG" | tr -d '\n')
jq -n --arg url "data:image/png;base64,$B64" --arg model "$MODEL" '{model: $model, stream: true, max_tokens: 8,
    messages: [{role: "user", content: [{type: "image_url", image_url: {url: $url}}, {type: "text", text: "answer en how many shapes"}]}]}' |
  post -N "$BASE/v1/chat/completions" -H 'content-type: application/json' -d @- |
  sed -n 's/^data: //p' | grep -v '^\[DONE\]$' | jq -rj '.choices[0].delta.content // empty' | sed 's/^/how many shapes: /'
echo
