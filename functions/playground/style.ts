/** The playground's stylesheet (inlined into the page; light and dark schemes, visible focus, no web fonts). */
export const PLAYGROUND_CSS = `
:root { color-scheme: light dark; --bg: #fafafa; --fg: #1b1b1f; --muted: #5c5c66; --panel: #fff; --line: #d4d4dc;
  --accent: #2457d6; --error: #b3261e; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #151518; --fg: #ececf1; --muted: #a5a5b0; --panel: #1f1f24; --line: #3a3a44; --accent: #8fb0ff; --error: #ff8a80; }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header, main { max-width: 72rem; margin: 0 auto; padding: 0 1rem; }
header p { color: var(--muted); margin-top: 0; }
h1 { font-size: 1.5rem; margin: 1rem 0 0.25rem; }
h2 { font-size: 1.05rem; margin: 0 0 0.5rem; }
main { display: grid; gap: 1rem; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); align-items: start; padding-bottom: 2rem; }
@media (max-width: 52rem) { main { grid-template-columns: minmax(0, 1fr); } }
section, form { background: var(--panel); border: 1px solid var(--line); border-radius: 0.5rem; padding: 1rem; }
details { margin: 0 0 0.75rem; } summary { cursor: pointer; font-weight: 600; }
fieldset { border: 0; margin: 0 0 0.75rem; padding: 0; }
legend, label { font-weight: 600; }
label { display: block; margin: 0.5rem 0 0.25rem; }
input[type="text"], input[type="number"], select, textarea { width: 100%; font: inherit; padding: 0.4rem 0.5rem;
  border: 1px solid var(--line); border-radius: 0.35rem; background: var(--bg); color: var(--fg); }
.row { display: flex; gap: 0.75rem; } .row > div { flex: 1; }
.hint { color: var(--muted); font-size: 0.85rem; margin: 0.2rem 0 0; }
button { font: inherit; font-weight: 600; padding: 0.45rem 1rem; border-radius: 0.35rem; border: 1px solid var(--accent);
  background: var(--accent); color: var(--panel); cursor: pointer; }
button[type="button"] { background: transparent; color: var(--accent); }
button:disabled { opacity: 0.5; cursor: not-allowed; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.drop { border: 2px dashed var(--line); border-radius: 0.5rem; padding: 0.75rem; text-align: center; }
.drop.over { border-color: var(--accent); }
.stage { position: relative; display: inline-block; width: min(100%, 32rem); margin-top: 0.75rem; line-height: 0; }
.stage img { display: block; width: 100%; height: auto; image-orientation: none; image-rendering: pixelated; }
#tags { position: absolute; inset: 0; pointer-events: none; }
.stage canvas { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; image-rendering: pixelated; }
.stage svg { position: absolute; inset: 0; width: 100%; height: 100%; overflow: visible; pointer-events: none; }
.stage rect { fill: none; stroke-width: 2.5px; }
.stage rect.segment { stroke-dasharray: 6 4; }
.tag { position: absolute; line-height: 1.2; font-size: 0.8rem; font-weight: 600; padding: 0 0.25rem; color: #fff;
  transform: translateY(-100%); white-space: nowrap; pointer-events: none; }
.tag.inside { transform: none; }
.c0 { stroke: #e6194b; background: #e6194b; } .c1 { stroke: #3cb44b; background: #2d8a3a; } .c2 { stroke: #4363d8; background: #4363d8; }
.c3 { stroke: #f58231; background: #c45f12; } .c4 { stroke: #911eb4; background: #911eb4; } .c5 { stroke: #008080; background: #008080; }
pre { white-space: pre-wrap; word-break: break-word; min-height: 3rem; margin: 0; padding: 0.5rem; border-radius: 0.35rem;
  background: var(--bg); border: 1px solid var(--line); font: 0.95rem/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
#status { min-height: 1.5rem; margin: 0.5rem 0; }
#status[data-state="error"] { color: var(--error); font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0.5rem 0 0; }
dt { color: var(--muted); } dd { margin: 0; font-variant-numeric: tabular-nums; }
ol { padding-left: 1.25rem; margin: 0.25rem 0 0; font-variant-numeric: tabular-nums; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
`;
