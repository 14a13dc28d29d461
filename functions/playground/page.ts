/**
 * The playground page as one HTML string: markup, the inline stylesheet ({@link PLAYGROUND_CSS}) and the inline
 * script ({@link PLAYGROUND_JS}). No external resources, so it loads in one request.
 */
import { PLAYGROUND_JS } from "./script.built.ts";
import { PLAYGROUND_CSS } from "./style.ts";

const MARKUP = `
<header>
  <h1>PaliGemma playground</h1>
  <p>Pick an image, choose a task or write a prompt, and watch the answer stream in. Detection boxes and
  segmentation masks are drawn over the image. The page uses the public API only: <code>POST /v1/images</code> and <code>POST /v1/generate</code>.</p>
</header>
<main>
  <form id="form" novalidate>
    <fieldset>
      <legend>Image</legend>
      <div class="drop" id="drop">
        <label for="image-file">Choose an image (PNG, JPEG, WebP or GIF), or drop or paste one anywhere on the page</label>
        <input type="file" id="image-file" name="image" accept="image/png,image/jpeg,image/webp,image/gif">
      </div>
    </fieldset>
    <fieldset>
      <legend>What to ask</legend>
      <label for="task">Task</label>
      <select id="task" name="task">
        <option value="caption">Caption</option>
        <option value="answer">Answer a question</option>
        <option value="detect">Detect objects</option>
        <option value="segment">Segment objects</option>
        <option value="ocr">Read text (OCR)</option>
        <option value="prompt">Free prompt</option>
      </select>
      <div data-for="caption answer">
        <label for="lang">Language</label>
        <input type="text" id="lang" name="lang" value="en" autocomplete="off" spellcheck="false" aria-describedby="lang-hint">
        <p class="hint" id="lang-hint">A language code such as en, de or pt-BR.</p>
      </div>
      <div data-for="answer">
        <label for="question">Question</label>
        <input type="text" id="question" name="question" autocomplete="off">
      </div>
      <div data-for="detect segment">
        <label for="objects">Objects</label>
        <input type="text" id="objects" name="objects" autocomplete="off" aria-describedby="objects-hint">
        <p class="hint" id="objects-hint">Separated by commas or semicolons, for example: circle, square.</p>
      </div>
      <div data-for="prompt">
        <label for="prompt">Prompt</label>
        <textarea id="prompt" name="prompt" rows="2" aria-describedby="prompt-hint"></textarea>
        <p class="hint" id="prompt-hint">Sent as it is, for example: detect circle ; square</p>
      </div>
    </fieldset>
    <fieldset>
      <legend>Decoding</legend>
      <div class="row">
        <div><label for="max-tokens">Max tokens</label><input type="number" id="max-tokens" min="1" max="512" value="64"></div>
        <div><label for="temperature">Temperature</label><input type="number" id="temperature" min="0" max="2" step="0.1" value="0"></div>
      </div>
    </fieldset>
    <details>
      <summary>API key</summary>
      <label for="api-key">API key (only when the server requires one; sent as Authorization: Bearer)</label>
      <input type="password" id="api-key" name="api-key" autocomplete="off">
    </details>
    <div class="row"><button type="submit" id="run">Run</button><button type="button" id="stop" disabled>Stop</button></div>
    <p id="status" role="status" aria-live="polite"></p>
  </form>
  <section aria-labelledby="result-title">
    <h2 id="result-title">Result</h2>
    <div class="stage" id="stage" hidden>
      <img id="preview" alt="">
      <canvas id="masks" aria-hidden="true" width="1" height="1"></canvas>
      <svg id="boxes" aria-hidden="true" preserveAspectRatio="none"></svg>
      <div id="tags" aria-hidden="true"></div>
    </div>
    <h2>Answer</h2>
    <pre id="output" aria-label="Generated text"></pre>
    <div id="objects-section" hidden>
      <h2>Objects</h2>
      <ol id="objects-list"></ol>
      <p id="dropped" class="hint"></p>
    </div>
    <h2>Timings</h2>
    <dl>
      <dt>Time to first token</dt><dd id="t-ttft"></dd>
      <dt>Decode speed</dt><dd id="t-tps"></dd>
      <dt>Tokens</dt><dd id="t-tokens"></dd>
      <dt>Cache</dt><dd id="t-cache"></dd>
      <dt>Total</dt><dd id="t-total"></dd>
    </dl>
  </section>
</main>`;

/** The page's parts, for the Content-Security-Policy hashes. */
export const PLAYGROUND_PARTS = Object.freeze({ css: PLAYGROUND_CSS, js: PLAYGROUND_JS });

/** The whole page. */
export const PLAYGROUND_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="Try PaliGemma: captions, questions, detection and segmentation, streamed.">
<title>PaliGemma playground</title>
<link rel="icon" href="data:,">
<style>${PLAYGROUND_CSS}</style>
</head>
<body>${MARKUP}
<script>${PLAYGROUND_JS}</script>
</body>
</html>
`;
