/**
 * The official `openai` client against a running `npm start`:
 *   npx tsx examples/openai-client.ts [image.png]
 * PALIGEMMA_URL (default http://localhost:8787) picks the server, MODEL (default paligemma-shapes) the model;
 * API_KEY is sent when the server has keys.
 * PaliGemma takes one user message: one image part plus text parts (the prompt, e.g. "caption en").
 */
import { readFileSync } from "node:fs";
import OpenAI from "openai";

const image = process.argv[2] ?? new URL("shapes.png", import.meta.url).pathname;
const client = new OpenAI({
  baseURL: `${process.env.PALIGEMMA_URL ?? "http://localhost:8787"}/v1`,
  apiKey: process.env.API_KEY ?? "unused-when-the-server-has-no-keys",
});
const model = process.env.MODEL ?? "paligemma-shapes";
const dataUrl = `data:image/png;base64,${readFileSync(image).toString("base64")}`;

/** One user message: the image and a PaliGemma prompt. */
const ask = (prompt: string): OpenAI.ChatCompletionMessageParam[] => [
  { role: "user", content: [{ type: "image_url", image_url: { url: dataUrl } }, { type: "text", text: prompt }] },
];

// One answer at once.
const caption = await client.chat.completions.create({ model, messages: ask("caption en"), max_tokens: 24 });
console.log(`caption: ${caption.choices[0].message.content}`);

// The same, streamed token by token.
const stream = await client.chat.completions.create({ model, messages: ask("answer en what color is the square"), stream: true });
process.stdout.write("color of the square: ");
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
process.stdout.write("\n");
