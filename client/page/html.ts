// The chat page's HTML. Its configuration (which server, which policy) travels as inert
// JSON in the page; the script (client/page/main.ts, bundled) attests and verifies the
// server itself, in the browser, before the prompt box is enabled.
import { escapeHtml } from '../report.js';

export const PAGE_SCRIPT_PATH = '/chat/sealed-chat.js';

export interface PageConfig {
  /** The sealed server the page talks to directly (CORS), not the proxy. */
  server: string;
  policy?: unknown;
  allowSimulation: boolean;
  /** Most tokens per answer; absent: the server's default. */
  maxTokens?: number;
}

/** JSON safe inside <script type="application/json">: no "</script>", no HTML comment openers. */
export function inertJson(value: unknown): string {
  return JSON.stringify(value ?? null)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function chatPageHtml(config: PageConfig, scriptPath = PAGE_SCRIPT_PATH): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sealed chat</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#1b1b1b}
#status{padding:.5rem .8rem;border:1px solid #ccc}
body[data-state=verified] #status,body[data-state=streaming] #status{background:#e6f4ea;border-color:#8bc79b}
body[data-state=rejected] #status,body[data-state=error] #status{background:#fde8e8;border-color:#e09a9a}
.warn{background:#fff3cd;border:1px solid #e0c36a;padding:.5rem .8rem}
details{margin:.8rem 0}dt{font-weight:600}dd{margin:0 0 .3rem 1rem;font-family:ui-monospace,monospace;word-break:break-all}
#transcript .msg{white-space:pre-wrap;margin:.6rem 0;padding:.5rem .8rem;border-radius:.4rem}
#transcript .user{background:#eef2ff}#transcript .assistant{background:#f6f6f6}#transcript .refused{background:#fde8e8;border:1px solid #e09a9a}
form{display:flex;gap:.5rem}#prompt{flex:1;font:inherit;padding:.4rem}
</style></head>
<body data-state="verifying">
<h1>sealed chat</h1>
<p id="status" role="status">Verifying ${escapeHtml(config.server)} in this browser&hellip;</p>
<details id="verification"><summary>What this page verified</summary><div id="report"></div></details>
<div id="transcript" aria-live="polite"></div>
<form id="ask"><input id="prompt" autocomplete="off" placeholder="Message (sent only after verification, encrypted in this page)" disabled>
<button id="send" type="submit" disabled>Send</button><button id="new-chat" type="button" disabled>New chat</button></form>
<script type="application/json" id="sealed-config">${inertJson(config)}</script>
<script type="module" src="${escapeHtml(scriptPath)}"></script>
</body></html>
`;
}
