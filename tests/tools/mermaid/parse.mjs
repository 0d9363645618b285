#!/usr/bin/env node
// Offline Mermaid syntax check: runs Mermaid's own parser (mermaid.parse)
// under a jsdom DOM shim, no browser.
//
// Usage: node parse.mjs FILE...
//   *.md files: every ```mermaid fenced block is one diagram.
//   other files: diagrams are separated by a line that is exactly `%% ---`
//                (blank chunks are ignored).
//
// Prints one line per diagram, in order:
//   ok <file>#<n>
//   error <file>#<n>: <message, on one line>
// n counts from 1 within each file. Exit status:
//   0  every diagram parsed and at least one diagram was found
//   1  at least one diagram failed to parse (and no exit-2 condition)
//   2  usage error, an unreadable file, or a file with no diagram in it
//      (printed as `error <file>: cannot read: ...` /
//      `error <file>: no diagrams found`); wins over 1

import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const SEPARATOR = '%% ---';

// Split a non-Markdown file on lines that are exactly `%% ---`.
export function splitDiagrams(text) {
  const chunks = [];
  let current = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === SEPARATOR) {
      chunks.push(current.join('\n'));
      current = [];
    } else {
      current.push(line);
    }
  }
  chunks.push(current.join('\n'));
  return chunks.filter((c) => c.trim() !== '');
}

// Extract every ```mermaid (or ~~~mermaid) fenced block from Markdown.
// The closing fence must use the same character and be at least as long.
export function extractMarkdownBlocks(text) {
  const blocks = [];
  const lines = text.split(/\r?\n/);
  let open = null; // { fence, indent, body: [] }
  for (const line of lines) {
    if (open === null) {
      const m = /^( {0,3})(`{3,}|~{3,})\s*mermaid(\s.*)?$/.exec(line);
      if (m) open = { fence: m[2], indent: m[1].length, body: [] };
      continue;
    }
    const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
    if (close && close[1][0] === open.fence[0] && close[1].length >= open.fence.length) {
      blocks.push(open.body.join('\n'));
      open = null;
      continue;
    }
    // Remove up to `indent` leading spaces, as CommonMark does.
    let strip = 0;
    while (strip < open.indent && line[strip] === ' ') strip++;
    open.body.push(line.slice(strip));
  }
  if (open !== null) blocks.push(open.body.join('\n')); // unclosed fence runs to EOF
  return blocks;
}

function oneLine(message) {
  return String(message).replace(/\s*\r?\n\s*/g, ' | ').trim();
}

async function main(argv) {
  const files = argv.slice(2);
  if (files.length === 0 || files.some((f) => f === '-h' || f === '--help')) {
    process.stderr.write('usage: node parse.mjs FILE...  (.md: ```mermaid blocks; else split on "%% ---")\n');
    return 2;
  }

  // Mermaid and DOMPurify look for a browser window when they are first
  // imported, so the globals must exist before the dynamic import below.
  const { window } = new JSDOM('<!DOCTYPE html><html><body></body></html>', { pretendToBeVisual: true });
  globalThis.window = window;
  globalThis.document = window.document;
  for (const name of ['Element', 'HTMLElement', 'SVGElement', 'Node', 'DocumentFragment', 'DOMParser', 'XMLSerializer', 'MutationObserver']) {
    if (globalThis[name] === undefined && window[name] !== undefined) globalThis[name] = window[name];
  }
  const { default: createDOMPurify } = await import('dompurify');
  const DOMPurify = createDOMPurify(window);
  globalThis.DOMPurify = DOMPurify;
  window.DOMPurify = DOMPurify;

  const { default: mermaid } = await import('mermaid');
  mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });

  let found = 0;
  let failed = 0;
  let usage = false;
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      console.log(`error ${file}: cannot read: ${oneLine(e.message)}`);
      usage = true;
      continue;
    }
    const diagrams = file.toLowerCase().endsWith('.md') ? extractMarkdownBlocks(text) : splitDiagrams(text);
    if (diagrams.length === 0) {
      console.log(`error ${file}: no diagrams found`);
      usage = true;
      continue;
    }
    for (let i = 0; i < diagrams.length; i++) {
      found++;
      const id = `${file}#${i + 1}`;
      try {
        // Without suppressErrors, parse() throws on any syntax error and
        // on an unknown diagram type.
        const result = await mermaid.parse(diagrams[i]);
        if (result === false) throw new Error('mermaid.parse returned false');
        console.log(`ok ${id}`);
      } catch (e) {
        failed++;
        console.log(`error ${id}: ${oneLine(e?.message ?? e)}`);
      }
    }
  }
  if (usage || found === 0) return 2;
  if (failed > 0) return 1;
  return 0;
}

main(process.argv).then(
  // Exit explicitly (jsdom may keep timers alive), once stdout is flushed.
  (code) => process.stdout.write('', () => process.exit(code)),
  (e) => {
    process.stderr.write(`parse.mjs: ${e?.stack ?? e}\n`);
    process.exit(2);
  },
);
