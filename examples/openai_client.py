"""The official `openai` Python client against a running `npm start`.

    pip install openai
    python3 examples/openai_client.py [image.png]

PALIGEMMA_URL (default http://localhost:8787) picks the server, MODEL (default paligemma-shapes) the model;
API_KEY is sent when the server has keys.
PaliGemma takes one user message: one image part plus text parts (the prompt, e.g. "caption en").
The same requests as examples/openai-client.ts; the test suite runs that one (this one needs the openai package
from PyPI, which the test machines cannot reach).
"""
import base64
import os
import sys
from pathlib import Path

from openai import OpenAI

image = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("shapes.png")
client = OpenAI(
    base_url=os.environ.get("PALIGEMMA_URL", "http://localhost:8787") + "/v1",
    api_key=os.environ.get("API_KEY", "unused-when-the-server-has-no-keys"),
)
model = os.environ.get("MODEL", "paligemma-shapes")
data_url = "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()


def ask(prompt):
    """One user message: the image and a PaliGemma prompt."""
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url}}, {"type": "text", "text": prompt}]}]


caption = client.chat.completions.create(model=model, messages=ask("caption en"), max_tokens=24)
print("caption:", caption.choices[0].message.content)

stream = client.chat.completions.create(model=model, messages=ask("answer en what color is the square"), stream=True)
print("color of the square: ", end="")
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()
