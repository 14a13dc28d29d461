/**
 * The playground's browser code (plain ES2020, no framework), inlined into the page. It uses the public API
 * only: `POST /v1/images` (raw body) → image_id, then `POST /v1/generate` with `stream: true`, reading the SSE
 * frames (`event: token` / `event: done` / `event: error`) from `fetch`'s ReadableStream, because EventSource
 * cannot POST. Boxes are drawn from the done event's `detections` / `segments` (original image pixels) into an
 * SVG whose viewBox is the image's natural size, so no scaling happens in this code. Segment masks (COCO
 * compressed RLE over the whole image, decoded here as pycocotools' rleFrString does) are painted into a canvas
 * of the image's natural size under the boxes.
 *
 * Kept as String.raw text (no backticks or template substitutions inside): a bundler must not rewrite it.
 */
export const PLAYGROUND_JS = String.raw`
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var SVG_NS = "http://www.w3.org/2000/svg";
  var form = $("form"), fileInput = $("image-file"), drop = $("drop"), taskSelect = $("task");
  var stage = $("stage"), preview = $("preview"), svg = $("boxes"), tags = $("tags"), canvas = $("masks");
  var output = $("output"), statusLine = $("status"), list = $("objects-list"), droppedNote = $("dropped");
  var runButton = $("run"), stopButton = $("stop");
  var session = "playground-" + Array.prototype.map.call(crypto.getRandomValues(new Uint8Array(8)),
    function (b) { return (b + 256).toString(16).slice(1); }).join("");
  var image = null;      // {file, url, id, width, height}
  var controller = null; // AbortController of the running request
  // The box colours of style.ts (.c0 … .c5), for mask pixels; alpha 0.45.
  var MASK_RGB = [[230, 25, 75], [60, 180, 75], [67, 99, 216], [245, 130, 49], [145, 30, 180], [0, 128, 128]];
  var MASK_ALPHA = 115;

  function setStatus(text, state) {
    statusLine.textContent = text;
    statusLine.dataset.state = state || "";
  }

  function showTaskFields() {
    var task = taskSelect.value;
    document.querySelectorAll("[data-for]").forEach(function (el) {
      el.hidden = el.dataset.for.split(" ").indexOf(task) < 0;
    });
  }

  function setTiming(id, text) { $(id).textContent = text; }

  function clearResult() {
    output.textContent = "";
    output.dataset.state = "idle";
    output.dataset.tokens = "0";
    svg.replaceChildren();
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    canvas.dataset.masks = "0";
    tags.replaceChildren();
    list.replaceChildren();
    droppedNote.textContent = "";
    $("objects-section").hidden = true;
    ["t-ttft", "t-tps", "t-tokens", "t-cache", "t-total"].forEach(function (id) { setTiming(id, "–"); });
  }

  function setImage(file) {
    if (!file) return;
    if (!/^image\/(png|jpeg)$/.test(file.type)) {
      setStatus("Unsupported image type " + (file.type || "(unknown)") + ": use PNG or JPEG.", "error");
      return;
    }
    if (image) URL.revokeObjectURL(image.url);
    image = { file: file, url: URL.createObjectURL(file), id: null, width: 0, height: 0 };
    clearResult();
    preview.src = image.url;
    preview.decode().then(function () {
      image.width = preview.naturalWidth;
      image.height = preview.naturalHeight;
      svg.setAttribute("viewBox", "0 0 " + image.width + " " + image.height);
      canvas.width = image.width;
      canvas.height = image.height;
      preview.alt = "The selected image, " + file.name + ", " + image.width + " by " + image.height + " pixels";
      stage.hidden = false;
      setStatus("Image ready: " + file.name + " (" + image.width + "×" + image.height + ").", "ready");
    }, function () { setStatus("The browser could not read this image.", "error"); });
  }

  function apiMessage(json, response) {
    var error = json && json.error;
    return error && error.message ? error.message + " (HTTP " + response.status + ")" : "HTTP " + response.status;
  }

  function headers(type) {
    var h = { "content-type": type }, key = $("api-key").value.trim();
    if (key) h.authorization = "Bearer " + key;
    return h;
  }

  function requestBody() {
    var body = { image_id: image.id, stream: true, session: session,
      max_tokens: Number($("max-tokens").value), temperature: Number($("temperature").value) };
    var task = taskSelect.value;
    if (task === "prompt") {
      body.prompt = $("prompt").value;
      return body;
    }
    body.task = task;
    if (task === "caption" || task === "answer") body.lang = $("lang").value.trim() || "en";
    if (task === "answer") body.question = $("question").value;
    if (task === "detect" || task === "segment") {
      body.objects = $("objects").value.split(/[;,]/).map(function (s) { return s.trim(); })
        .filter(function (s) { return s.length > 0; });
    }
    return body;
  }

  // SSE per the WHATWG spec: lines end with CRLF, LF or CR; a blank line dispatches; "data" lines join with LF.
  async function readEvents(body, onEvent) {
    var reader = body.getReader(), decoder = new TextDecoder(), buffer = "", name = "", data = [];
    function line(text) {
      if (text === "") {
        if (data.length > 0) onEvent(name || "message", data.join("\n"));
        name = ""; data = [];
        return;
      }
      if (text.charAt(0) === ":") return;
      var colon = text.indexOf(":");
      var field = colon < 0 ? text : text.slice(0, colon);
      var value = colon < 0 ? "" : text.slice(colon + 1);
      if (value.charAt(0) === " ") value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    try {
      for (;;) {
        var chunk = await reader.read();
        buffer += chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
        var match;
        while ((match = /\r\n|\r|\n/.exec(buffer)) !== null) {
          if (match[0] === "\r" && match.index === buffer.length - 1 && !chunk.done) break; // maybe half a CRLF
          line(buffer.slice(0, match.index));
          buffer = buffer.slice(match.index + match[0].length);
        }
        if (chunk.done) return;
      }
    } finally {
      reader.cancel().catch(function () {});
    }
  }

  function fixed(v) { return (Math.round(v * 10) / 10).toString(); }

  // COCO compressed RLE → run lengths (pycocotools' rleFrString): 5-bit groups, 0x20 = more, 0x10 = sign;
  // from the fourth count on, the value is a difference to the count two before.
  function rleCounts(s) {
    var counts = [], p = 0;
    while (p < s.length) {
      var x = 0, k = 0, more = true, c;
      while (more) {
        c = s.charCodeAt(p) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = (c & 0x20) !== 0;
        p++; k++;
        if (!more && (c & 0x10)) x |= -1 << (5 * k);
      }
      if (counts.length > 2) x += counts[counts.length - 2];
      counts.push(x);
    }
    return counts;
  }

  // Paints a mask (runs of 0s then 1s, column-major over [height, width]); returns its pixel count.
  function paintMask(rle, rgb) {
    var h = rle.size[0], w = rle.size[1];
    if (h !== canvas.height || w !== canvas.width) return 0;
    var ctx = canvas.getContext("2d"), pixels = ctx.getImageData(0, 0, w, h), counts = rleCounts(rle.counts);
    var at = 0, painted = 0;
    for (var i = 0; i < counts.length; i++) {
      if (i % 2 === 1) {
        for (var j = at; j < at + counts[i] && j < w * h; j++) {
          var y = j % h, o = (y * w + (j - y) / h) * 4;
          pixels.data[o] = rgb[0]; pixels.data[o + 1] = rgb[1]; pixels.data[o + 2] = rgb[2]; pixels.data[o + 3] = MASK_ALPHA;
          painted++;
        }
      }
      at += counts[i];
    }
    ctx.putImageData(pixels, 0, 0);
    return painted;
  }

  function draw(result) {
    if (!result.detections && !result.segments) return;
    $("objects-section").hidden = false;
    var colors = {};
    var objects = (result.detections || []).map(function (d) { return { d: d, segment: false }; })
      .concat((result.segments || []).map(function (s) { return { d: s, segment: true }; }));
    objects.forEach(function (o, i) {
      var d = o.d, b = d.box;
      if (!(d.label in colors)) colors[d.label] = Object.keys(colors).length % 6;
      var color = "c" + colors[d.label];
      var rect = document.createElementNS(SVG_NS, "rect");
      rect.setAttribute("x", b.x1); rect.setAttribute("y", b.y1);
      rect.setAttribute("width", b.x2 - b.x1); rect.setAttribute("height", b.y2 - b.y1);
      rect.setAttribute("vector-effect", "non-scaling-stroke");
      rect.setAttribute("class", color + (o.segment ? " segment" : ""));
      rect.dataset.label = d.label; rect.dataset.index = String(i);
      svg.appendChild(rect);
      var maskPixels = o.segment && d.mask ? paintMask(d.mask, MASK_RGB[colors[d.label]]) : 0;
      if (o.segment && d.mask) canvas.dataset.masks = String(Number(canvas.dataset.masks) + 1);
      var tag = document.createElement("span");
      tag.className = "tag " + color + (b.y1 / image.height < 0.12 ? " inside" : "");
      tag.textContent = d.label;
      tag.style.left = (100 * b.x1 / image.width) + "%";
      tag.style.top = (100 * b.y1 / image.height) + "%";
      tags.appendChild(tag);
      var item = document.createElement("li");
      item.textContent = d.label + ": x " + fixed(b.x1) + "–" + fixed(b.x2) + ", y " + fixed(b.y1) + "–" + fixed(b.y2) +
        " px" + (!o.segment ? "" : d.mask ? " (segment, mask of " + maskPixels + " px)" :
        " (segment, 16 codes; mask not decoded: " + (d.mask_reason || "no decoder") + ")");
      list.appendChild(item);
    });
    if (objects.length === 0) droppedNote.textContent = "No objects found.";
    if (result.dropped) droppedNote.textContent = result.dropped + " malformed object(s) in the answer were left out.";
  }

  function showTimings(result, clientFirstMs, clientTotalMs) {
    var usage = result.usage || {}, t = usage.timings || {}, cache = usage.prefix_cache || {};
    setTiming("t-ttft", t.time_to_first_token_ms + " ms in the server, " + Math.round(clientFirstMs) + " ms in the browser");
    setTiming("t-tps", t.tokens_per_second ? fixed(t.tokens_per_second) + " tokens/s" : "– (one token)");
    setTiming("t-tokens", usage.prompt_tokens + " prompt, " + usage.completion_tokens + " generated (" + result.finish_reason + ")");
    setTiming("t-cache", "image soft tokens " + cache.soft_tokens + ", prefill KV " + cache.kv + " (" + cache.cached_tokens + " tokens reused)");
    setTiming("t-total", t.total_ms + " ms in the server, " + Math.round(clientTotalMs) + " ms round trip");
  }

  async function run() {
    if (!image || !image.width) { setStatus("Pick an image first.", "error"); return; }
    controller = new AbortController();
    runButton.disabled = true; stopButton.disabled = false;
    clearResult();
    try {
      if (!image.id) {
        setStatus("Uploading the image…", "busy");
        var up = await fetch("/v1/images", { method: "POST", headers: headers(image.file.type),
          body: image.file, signal: controller.signal });
        var upJson = await up.json().catch(function () { return null; });
        if (!up.ok) throw new Error(apiMessage(upJson, up));
        image.id = upJson.image_id;
      }
      setStatus("Generating…", "busy");
      output.dataset.state = "streaming";
      var started = performance.now(), firstAt = null, text = "", count = 0, result = null;
      var response = await fetch("/v1/generate", { method: "POST", headers: headers("application/json"),
        body: JSON.stringify(requestBody()), signal: controller.signal });
      if (!response.ok) throw new Error(apiMessage(await response.json().catch(function () { return null; }), response));
      await readEvents(response.body, function (name, data) {
        var payload = JSON.parse(data);
        if (name === "token") {
          if (firstAt === null) firstAt = performance.now();
          text += payload.text;
          output.textContent = text;
          output.dataset.tokens = String(++count);
        } else if (name === "done") {
          result = payload;
        } else if (name === "error") {
          throw new Error(payload.error.message);
        }
      });
      if (!result) throw new Error("the stream ended without a result");
      output.textContent = result.text;
      output.dataset.state = "done";
      draw(result);
      showTimings(result, (firstAt || performance.now()) - started, performance.now() - started);
      var found = (result.detections || []).length + (result.segments || []).length;
      setStatus("Done: " + count + " token(s)" + (result.detections || result.segments ? ", " + found + " object(s)." : "."), "done");
    } catch (err) {
      output.dataset.state = "error";
      if (err && err.name === "AbortError") setStatus("Stopped.", "stopped");
      else setStatus("Error: " + (err && err.message ? err.message : String(err)), "error");
    } finally {
      controller = null;
      runButton.disabled = false; stopButton.disabled = true;
    }
  }

  fileInput.addEventListener("change", function () { setImage(fileInput.files && fileInput.files[0]); });
  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  document.addEventListener("dragleave", function (e) { if (e.relatedTarget === null) drop.classList.remove("over"); });
  document.addEventListener("drop", function (e) {
    e.preventDefault();
    drop.classList.remove("over");
    setImage(e.dataTransfer && e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", function (e) {
    var file = e.clipboardData && e.clipboardData.files[0];
    if (file) setImage(file);
  });
  taskSelect.addEventListener("change", showTaskFields);
  form.addEventListener("submit", function (e) { e.preventDefault(); run(); });
  stopButton.addEventListener("click", function () { if (controller) controller.abort(); });
  showTaskFields();
  clearResult();
  document.documentElement.dataset.ready = "true";
})();
`;
