// Verifies SNS messages with AWS's own validator (the `sns-validator` package), as a seller's
// Node endpoint would. Reads a JSON list of messages on stdin; prints a JSON list of
// results ({ok, error}). marketmeter serves its certificate over plain HTTP on 127.0.0.1:
// the validator insists on https, so its certificate fetch is pointed at http (the URL is
// not among the signed fields).
import http from "node:http";
import https from "node:https";
import MessageValidator from "sns-validator";

https.get = (url, callback) => http.get(String(url).replace(/^https:/, "http:"), callback);

const input = await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
});
const validator = new MessageValidator(/^127\.0\.0\.1:\d+$/);
const results = [];
for (const message of JSON.parse(input)) {
  const forValidator = { ...message, SigningCertURL: message.SigningCertURL.replace(/^http:/, "https:") };
  results.push(
    await new Promise((resolve) =>
      validator.validate(forValidator, (error) => resolve({ ok: !error, error: error ? String(error) : null })),
    ),
  );
}
process.stdout.write(JSON.stringify(results));
