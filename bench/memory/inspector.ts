/**
 * The JavaScript heap of a worker under wrangler's dev server, read over its inspector (Chrome DevTools Protocol
 * `Runtime.getHeapUsage`). A minimal WebSocket client over node:http's upgrade (text frames, client-masked, as
 * RFC 6455 §5 requires): Node's own WebSocket never completes the handshake with wrangler's inspector proxy here.
 */
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import type { Socket } from "node:net";

/** A masked text frame (RFC 6455 §5.2). */
function frame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x81, 0x80 | len]) : len < 65536 ? Buffer.from([0x81, 0x80 | 126, len >> 8, len & 255]) : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), Buffer.from(new BigUint64Array([BigInt(len)]).buffer).reverse()]);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

/** Reads unmasked server frames from `buf`; returns the complete text payloads and the rest. */
function parse(buf: Buffer): { texts: string[]; rest: Buffer } {
  const texts: string[] = [];
  let o = 0;
  for (;;) {
    if (buf.length - o < 2) break;
    let len = buf[o + 1] & 127;
    let at = o + 2;
    if (len === 126) {
      if (buf.length - o < 4) break;
      len = buf.readUInt16BE(o + 2);
      at = o + 4;
    } else if (len === 127) {
      if (buf.length - o < 10) break;
      len = Number(buf.readBigUInt64BE(o + 2));
      at = o + 10;
    }
    if (buf.length < at + len) break;
    if ((buf[o] & 0x0f) === 1) texts.push(buf.subarray(at, at + len).toString());
    o = at + len;
  }
  return { texts, rest: buf.subarray(o) };
}

/** `Runtime.getHeapUsage` of the worker behind inspector `url` (http://host:port/): used bytes of its JS heap. */
export async function jsHeapUsed(url: URL, timeoutMs = 10_000): Promise<number> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const req = request({ host: url.hostname, port: Number(url.port), path: "/ws", headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": randomBytes(16).toString("base64") } });
    req.on("upgrade", (_res, s) => resolve(s));
    req.on("response", (res) => reject(new Error(`inspector answered HTTP ${res.statusCode}`)));
    req.on("error", reject);
    req.end();
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => reject(new Error("the inspector did not answer Runtime.getHeapUsage")), timeoutMs);
      socket.on("data", (d: Buffer) => {
        const { texts, rest } = parse(Buffer.concat([buf, d]));
        buf = rest;
        for (const t of texts) {
          const msg = JSON.parse(t) as { id?: number; result?: { usedSize: number } };
          if (msg.id === 1 && msg.result) {
            clearTimeout(timer);
            resolve(msg.result.usedSize);
          }
        }
      });
      socket.write(frame(JSON.stringify({ id: 1, method: "Runtime.getHeapUsage" })));
    });
  } finally {
    socket.destroy();
  }
}
