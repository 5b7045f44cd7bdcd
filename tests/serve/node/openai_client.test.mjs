// The official openai npm package (a client no one here wrote) against a running `lathe serve`:
// models listing, completions, chat, streaming of both (with include_usage), and the errors
// the SDK maps to its classes. tests/e2e/serve_openai_node.sh starts the server and sets
// LATHE_BASE_URL (…/v1), LATHE_API_KEY, LATHE_MODEL and LATHE_ADAPTER.
import assert from "node:assert/strict";
import test from "node:test";
import OpenAI from "openai";

const baseURL = process.env.LATHE_BASE_URL;
const model = process.env.LATHE_MODEL;
const adapter = process.env.LATHE_ADAPTER;
const client = new OpenAI({ baseURL, apiKey: process.env.LATHE_API_KEY, maxRetries: 0, timeout: 60_000 });

test("models lists the base and the adapter", async () => {
  const ids = [];
  for await (const card of client.models.list()) ids.push(card);
  const base = ids.find((c) => c.id === model);
  const lora = ids.find((c) => c.id === adapter);
  assert.ok(base, `base ${model} missing from ${JSON.stringify(ids)}`);
  assert.ok(lora, `adapter ${adapter} missing`);
  assert.equal(base.object, "model");
  assert.equal(lora.parent, model);
});

test("completions", async () => {
  const r = await client.completions.create({ model, prompt: "SELECT", max_tokens: 6, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.equal(typeof r.choices[0].text, "string");
  assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test("chat with the adapter", async () => {
  const r = await client.chat.completions.create({
    model: adapter,
    messages: [{ role: "user", content: "宝马在上海有几辆在库？" }],
    max_tokens: 8,
    temperature: 0,
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
});

test("streamed chat equals the full reply", async () => {
  const request = { model: adapter, messages: [{ role: "user", content: "How many cars?" }], max_tokens: 10, temperature: 0 };
  const full = await client.chat.completions.create(request);
  const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? "";
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.equal(text, full.choices[0].message.content);
  assert.equal(finish, full.choices[0].finish_reason);
  assert.deepEqual(usage, full.usage);
});

test("streamed completions equal the full text", async () => {
  const request = { model, prompt: "How many", max_tokens: 12, temperature: 0 };
  const full = await client.completions.create(request);
  const stream = await client.completions.create({ ...request, stream: true });
  let text = "";
  for await (const chunk of stream) for (const choice of chunk.choices) text += choice.text;
  assert.equal(text, full.choices[0].text);
});

test("errors arrive as the SDK's classes", async () => {
  await assert.rejects(
    client.completions.create({ model: "no-such-model", prompt: "x", max_tokens: 2 }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
  );
  await assert.rejects(
    client.completions.create({ model, prompt: "x", temperature: -1 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400,
  );
  const wrongKey = new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(wrongKey.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});
