// Evidence for the escaping rules in ../README.md: for each sequence diagram in
// a JSON array (default: escaping-cases.json), prints whether mermaid.parse()
// accepts it, the message texts Mermaid stored, and the text of the SVG that
// mermaid.render() draws under jsdom (getBBox and CSSStyleSheet are stubbed,
// so layout numbers are meaningless; only the drawn text matters).
// Usage: node escaping-probe.mjs [cases.json]
import { JSDOM } from 'jsdom';
const { window } = new JSDOM('<!DOCTYPE html><html><body></body></html>', { pretendToBeVisual: true });
globalThis.window = window; globalThis.document = window.document;
for (const n of ['Element','HTMLElement','SVGElement','Node','DocumentFragment','DOMParser','XMLSerializer','MutationObserver']) if (globalThis[n]===undefined && window[n]) globalThis[n]=window[n];
globalThis.CSSStyleSheet = window.CSSStyleSheet ?? class { replaceSync(){} insertRule(){} };
window.SVGElement.prototype.getBBox = function(){ const t=(this.textContent||''); return {x:0,y:0,width:t.length*8,height:16}; };
window.SVGElement.prototype.getComputedTextLength = function(){ return (this.textContent||'').length*8; };
const { default: createDOMPurify } = await import('dompurify');
globalThis.DOMPurify = createDOMPurify(window);
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad:false, securityLevel:'strict' });
const cases = JSON.parse((await import('node:fs')).readFileSync(process.argv[2] ?? new URL('escaping-cases.json', import.meta.url), 'utf8'));
let i=0;
for (const c of cases) {
  i++;
  let parse, db='', rendered='';
  try { await mermaid.parse(c); parse='ok'; } catch(e) { parse='ERROR: '+String(e.message).split('\n').slice(-1)[0].slice(0,90); }
  if (parse==='ok') {
    try {
      const d = await mermaid.mermaidAPI.getDiagramFromText(c);
      db = JSON.stringify(d.db.getMessages().filter(m=>m.message!==undefined).map(m=>m.message)); const acts=[...d.db.getActors().entries()].map(([k,v])=>k+'='+v.description); db += ' actors '+JSON.stringify(acts);
    } catch(e) { db='dbfail '+e.message; }
    try {
      const { svg } = await mermaid.render('g'+i, c);
      const doc = new window.DOMParser().parseFromString(svg, 'image/svg+xml');
      rendered = JSON.stringify([...doc.querySelectorAll('text.messageText, text.noteText, text.labelText, text.loopText, text.actor')].map(t=>t.textContent));
    } catch(e) { rendered='renderfail '+e.message.slice(0,80); }
  }
  process.stdout.write([JSON.stringify(c.replace(/^sequenceDiagram\n/,'')), '=>', parse, db && ('| db '+db), rendered && ('| svg '+rendered)].join(' ')+'\n');
}
process.exit(0);
