// Drives the AWS SDK for JavaScript v3 against a marketmeter endpoint, for
// tests/compat/test_js_sdk.py.
//
// Reads one JSON object on stdin:
//   {"endpoint": "http://127.0.0.1:PORT", "region": "us-east-1",
//    "credentials": {"NAME": {"accessKeyId": "...", "secretAccessKey": "..."}, ...},
//    "calls": [{"name": "...", "credentials": "NAME", "command": "MeterUsage",
//               "input": {...}}, ...]}
// where any {"$date": EPOCH_MILLISECONDS} in an input becomes a JavaScript Date.
// Runs the calls in order and prints one JSON object on stdout:
//   {"node": "v20...", "sdk": "3.x.y",
//    "results": {"NAME": {"ok": true, "status": 200, "output": {...}, "raw": {...},
//                         "injected": [...]}
//                | {"ok": false, "name": "...", "status": 400, "fault": "client",
//                   "message": "...", "raw": {...}}}}
// `output` is what the SDK parsed (Dates as ISO 8601 strings); `raw` is the response
// body as the server sent it, read before the SDK's deserializer, which drops members its
// model doesn't know; `injected` names top-level input members this SDK version doesn't
// model (so its serializer dropped them), which were added to the JSON body before the
// SDK signed it.
// Exits 0 when every call ran (failed calls included), non-zero on a problem of its own.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Readable } from "node:stream";

import * as metering from "@aws-sdk/client-marketplace-metering";

const require = createRequire(import.meta.url);
const SDK_VERSION = require("@aws-sdk/client-marketplace-metering/package.json").version;

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value !== null && typeof value === "object") {
    if (Object.keys(value).length === 1 && "$date" in value) return new Date(value.$date);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  }
  return value;
}

// build step, before contentLengthMiddleware: add the scalar input members the SDK's
// serializer left out (members newer than this SDK's model) to the JSON body.
function injectUnmodelled(input, injected) {
  return (next) => async (args) => {
    const request = args.request;
    if (typeof request?.body === "string") {
      const body = JSON.parse(request.body);
      for (const [key, value] of Object.entries(input)) {
        const scalar = ["string", "number", "boolean"].includes(typeof value);
        if (scalar && !(key in body)) {
          body[key] = value;
          injected.push(key);
        }
      }
      if (injected.length > 0) {
        request.body = JSON.stringify(body);
        for (const name of Object.keys(request.headers)) {
          if (name.toLowerCase() === "content-length") {
            request.headers[name] = String(Buffer.byteLength(request.body));
          }
        }
      }
    }
    return next(args);
  };
}

// deserialize step, between the HTTP handler and the SDK's deserializer: keep a copy of
// the raw response body and hand the deserializer an identical stream.
function captureRaw(captured) {
  return (next) => async (args) => {
    const result = await next(args);
    const response = result.response;
    const chunks = [];
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
    const raw = Buffer.concat(chunks);
    captured.text = raw.toString("utf8");
    response.body = Readable.from([raw]);
    return result;
  };
}

function parseRaw(text) {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { unparsed: text };
  }
}

async function run(spec) {
  const clients = {};
  const client = (name) => {
    if (!(name in clients)) {
      const credentials = spec.credentials[name];
      if (credentials === undefined) throw new Error(`no credentials named ${name}`);
      clients[name] = new metering.MarketplaceMeteringClient({
        endpoint: spec.endpoint,
        region: spec.region ?? "us-east-1",
        credentials,
        maxAttempts: 1,
        requestHandler: { connectionTimeout: 5000, requestTimeout: 20000 },
      });
    }
    return clients[name];
  };

  const results = {};
  for (const call of spec.calls) {
    const Command = metering[`${call.command}Command`];
    if (Command === undefined) throw new Error(`no command ${call.command}`);
    const input = revive(call.input);
    const command = new Command(input);
    const injected = [];
    const captured = {};
    command.middlewareStack.add(injectUnmodelled(input, injected), {
      step: "build",
      priority: "high",
      name: "marketmeterInjectUnmodelled",
    });
    command.middlewareStack.add(captureRaw(captured), {
      step: "deserialize",
      priority: "low",
      name: "marketmeterCaptureRaw",
    });
    try {
      const { $metadata, ...output } = await client(call.credentials).send(command);
      results[call.name] = {
        ok: true,
        status: $metadata.httpStatusCode,
        requestId: $metadata.requestId ?? null,
        output,
        raw: parseRaw(captured.text),
        injected,
      };
    } catch (error) {
      results[call.name] = {
        ok: false,
        name: error.name,
        status: error.$metadata?.httpStatusCode ?? null,
        fault: error.$fault ?? null,
        message: error.message,
        raw: parseRaw(captured.text),
        injected,
      };
    }
  }
  return results;
}

const spec = JSON.parse(readFileSync(0, "utf8"));
const results = await run(spec);
process.stdout.write(
  `${JSON.stringify({ node: process.version, sdk: SDK_VERSION, results })}\n`,
);
