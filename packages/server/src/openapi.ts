// The API described: an OpenAPI 3.1 document generated from the zod schemas that validate the
// requests (GET /openapi.json), and a reference page rendered from it on the server (GET /docs):
// plain HTML and CSS, no script and nothing fetched from elsewhere.
import type { OpenAPIHono } from '@hono/zod-openapi'

import { hostInfo } from '@ns/core'

type Doc = ReturnType<OpenAPIHono['getOpenAPI31Document']>

export function openApiDocument(app: OpenAPIHono, opts: { bearer: boolean }): Doc {
  const doc = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'ns',
      version: hostInfo().version,
      description:
        'The HTTP API of ns: Linux containers from a Rust core. A thin layer over @ns/core: every container lives in the ' +
        'server\'s state directory, so the server can restart without losing any. Errors are `{ "error": { "code", "message", "field"? } }`. ' +
        'Over TCP every route but /v1/health, /openapi.json and /docs needs `Authorization: Bearer <token>`; over the unix socket its file mode (0660) is the access control.',
    },
    servers: [{ url: '/', description: 'this server' }],
    tags: [
      { name: 'containers', description: 'Containers as resources' },
      { name: 'lifecycle', description: 'Start, pause, resume, update, stop, kill, wait' },
      { name: 'run', description: 'Run to completion: a new container, or a command in a running one' },
      { name: 'logs', description: 'Output kept by the monitor' },
      { name: 'stats', description: 'Resource figures' },
      { name: 'events', description: 'Lifecycle events' },
      {
        name: 'images',
        description:
          "The server's image store: pull from registries (the policy decides which), list, inspect, tag, remove, prune, load and save archives",
      },
      { name: 'system', description: 'The server itself' },
    ],
  })
  if (opts.bearer) {
    doc.components = { ...doc.components, securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }
    doc.security = [{ bearer: [] }]
  }
  return doc
}

const escape = (s: unknown) =>
  String(s ?? '').replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  )

/** Inline `code` spans of the descriptions, and nothing else of markdown. */
const prose = (s: unknown) => escape(s).replace(/`([^`]+)`/g, '<code>$1</code>')

/** A schema as indented JSON, each `$ref` a link to its component. */
function schemaHtml(schema: unknown): string {
  return escape(JSON.stringify(schema, null, 2)).replace(
    /&quot;\$ref&quot;: &quot;#\/components\/schemas\/([^&]+)&quot;/g,
    (_m, name: string) => `&quot;$ref&quot;: <a href="#schema-${name}">${name}</a>`,
  )
}

const methods = ['get', 'post', 'put', 'patch', 'delete'] as const

interface Operation {
  summary?: string
  description?: string
  tags?: string[]
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: unknown }[]
  requestBody?: { content?: Record<string, { schema?: unknown }> }
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>
}

function operationHtml(method: string, path: string, op: Operation): string {
  const anchor = `${method}-${path.replace(/[^A-Za-z0-9]+/g, '-')}`
  const params = op.parameters ?? []
  const paramRows = params
    .map((p) => {
      const s = (p.schema ?? {}) as { description?: string }
      return `<tr><td><code>${escape(p.name)}</code></td><td>${escape(p.in)}</td><td>${p.required ? 'yes' : ''}</td><td>${prose(p.description ?? s.description ?? '')}<details><summary>schema</summary><pre>${schemaHtml(p.schema)}</pre></details></td></tr>`
    })
    .join('')
  const body = op.requestBody?.content?.['application/json']?.schema
  const responses = Object.entries(op.responses ?? {})
    .map(([status, r]) => {
      const types = Object.entries(r.content ?? {})
      const schemas = types
        .map(([type, c]) => `<div class="type">${escape(type)}</div><pre>${schemaHtml(c.schema)}</pre>`)
        .join('')
      return `<li><span class="status s${status[0]}">${escape(status)}</span> ${prose(r.description)}${schemas ? `<details><summary>body</summary>${schemas}</details>` : ''}</li>`
    })
    .join('')
  return `<section class="op" id="${anchor}">
<h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escape(path)}</code> <span class="summary">${prose(op.summary)}</span></h3>
${op.description ? `<p>${prose(op.description)}</p>` : ''}
${params.length ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>description</th></tr>${paramRows}</table>` : ''}
${body ? `<h4>Request body <small>application/json</small></h4><pre>${schemaHtml(body)}</pre>` : ''}
<h4>Responses</h4><ul class="responses">${responses}</ul>
</section>`
}

const css = `
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2430;background:#fafbfc}
header{background:#1d2430;color:#fff;padding:1.2em 2em}header h1{margin:0}header p{max-width:60em;color:#cfd6e0}
main{display:flex;gap:2em;padding:1em 2em}nav{min-width:18em;position:sticky;top:0;align-self:flex-start;max-height:100vh;overflow:auto}
nav a{display:block;text-decoration:none;color:#1d2430;font-size:13px;padding:1px 0}nav h2{font-size:13px;text-transform:uppercase;color:#6b7585;margin:1em 0 .2em}
article{flex:1;min-width:0}.op{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:.3em 1.2em 1em;margin:0 0 1.2em}
.method{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;color:#fff;font-size:13px;padding:1px 6px}
.get{background:#2f7d4f}.post{background:#2c5fa8}.delete{background:#b33a3a}.put,.patch{background:#a86b1f}
.summary{font-weight:normal;color:#4a5565}pre{background:#f3f5f8;padding:.7em;overflow:auto;font-size:12.5px;border-radius:4px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e6e9ef;text-align:left;padding:4px 8px;vertical-align:top}
.status{display:inline-block;min-width:2.6em;font-weight:bold}.s2{color:#2f7d4f}.s4{color:#a86b1f}.s5{color:#b33a3a}
.responses{list-style:none;padding:0}.type{font-size:12px;color:#6b7585}code{font-size:13px}summary{cursor:pointer;color:#2c5fa8;font-size:13px}
`

/** The reference page: every operation by tag, then every named schema. */
export function docsHtml(doc: Doc): string {
  const ops: { tag: string; method: string; path: string; op: Operation }[] = []
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of methods) {
      const op = (item as Record<string, Operation | undefined>)[method]
      if (op) ops.push({ tag: op.tags?.[0] ?? 'other', method, path, op })
    }
  }
  const tags = (doc.tags ?? []).map((t) => t.name)
  for (const o of ops) if (!tags.includes(o.tag)) tags.push(o.tag)
  const nav = tags
    .map((t) => {
      const links = ops
        .filter((o) => o.tag === t)
        .map(
          (o) =>
            `<a href="#${o.method}-${o.path.replace(/[^A-Za-z0-9]+/g, '-')}">${o.method.toUpperCase()} ${escape(o.path)}</a>`,
        )
        .join('')
      return links ? `<h2>${escape(t)}</h2>${links}` : ''
    })
    .join('')
  const sections = tags
    .map((t) => {
      const inTag = ops.filter((o) => o.tag === t)
      if (!inTag.length) return ''
      const desc = doc.tags?.find((x) => x.name === t)?.description
      return `<h2 id="tag-${escape(t)}">${escape(t)}</h2>${desc ? `<p>${prose(desc)}</p>` : ''}${inTag.map((o) => operationHtml(o.method, o.path, o.op)).join('\n')}`
    })
    .join('\n')
  const schemas = Object.entries(doc.components?.schemas ?? {})
    .map(
      ([name, s]) =>
        `<section class="op" id="schema-${escape(name)}"><h3><code>${escape(name)}</code></h3><pre>${schemaHtml(s)}</pre></section>`,
    )
    .join('\n')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(doc.info.title)} API ${escape(doc.info.version)}</title><style>${css}</style></head>
<body><header><h1>${escape(doc.info.title)} API <small>${escape(doc.info.version)}</small></h1><p>${prose(doc.info.description)}</p>
<p>OpenAPI ${escape(doc.openapi)} document: <a style="color:#9cc3ff" href="/openapi.json">/openapi.json</a></p></header>
<main><nav>${nav}<h2>schemas</h2>${Object.keys(doc.components?.schemas ?? {})
    .map((n) => `<a href="#schema-${escape(n)}">${escape(n)}</a>`)
    .join('')}</nav>
<article>${sections}<h2 id="schemas">Schemas</h2>${schemas}</article></main></body></html>
`
}
