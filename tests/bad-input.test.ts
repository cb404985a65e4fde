import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { readJsonBody } from '../packages/shared/src/http/body.ts';
import { functionApp } from '../packages/shared/src/http/function-app.ts';
import { testSql } from './helpers/db.ts';
import { auth, SECRET } from './helpers/workflows.ts';

// The limits every body meets before a handler sees it (packages/shared/src/http/body.ts).

const sql = testSql();
const app = functionApp('limits', {
  sql,
  config: { functionSecret: SECRET, serviceRoleKey: null },
});
let handled = 0;
app.post('/echo', async (c) => {
  const body = await readJsonBody(c, z.object({ value: z.unknown().optional() }).strict());
  handled++;
  return c.json(body);
});

const post = (body: BodyInit) =>
  app.request('/limits/echo', {
    method: 'POST',
    headers: auth,
    body,
    ...({ duplex: 'half' } as object), // a streamed body needs it
  });

/** A body streamed in chunks, with no Content-Length: `total` bytes of spaces, then `{}`. */
function streamed(total: number, onRead: (sent: number) => void) {
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) {
        controller.enqueue(new TextEncoder().encode('{}'));
        return controller.close();
      }
      controller.enqueue(chunk);
      sent += chunk.byteLength;
      onRead(sent);
    },
  });
}

describe('request bodies', () => {
  it('refuses a streamed body past 1 MiB with 413 before reading it all', async () => {
    let read = 0;
    const res = await post(streamed(64 * 1024 * 1024, (n) => (read = n)));
    expect(res.status).toBe(413);
    expect(read).toBeLessThan(4 * 1024 * 1024);
    const under = await post(streamed(512 * 1024, () => {}));
    expect(under.status).toBe(200);
  });

  it('refuses nesting deeper than 32 levels, at any size, with 400', async () => {
    for (const depth of [33, 10_000]) {
      const nested = '['.repeat(depth) + ']'.repeat(depth);
      const res = await post(`{"value":${nested}}`);
      expect(res.status, String(depth)).toBe(400);
      expect((await res.json()).error.message).toMatch(/nested deeper than 32 levels/);
    }
    const fine = await post(`{"value":${'['.repeat(30)}${']'.repeat(30)}}`);
    expect(fine.status).toBe(200);
  });

  it('refuses a NUL character in a string or a key with 400', async () => {
    for (const body of ['{"value":"a\\u0000b"}', '{"value":{"k\\u0000":1}}']) {
      const res = await post(body);
      expect(res.status, body).toBe(400);
      expect((await res.json()).error.message).toMatch(/NUL/);
    }
  });

  it('refuses a lone UTF-16 surrogate in a string or a key with 400', async () => {
    for (const body of ['{"value":"a\\ud800"}', '{"value":{"\\udc00k":1}}']) {
      const res = await post(body);
      expect(res.status, body).toBe(400);
      expect((await res.json()).error.message).toMatch(/lone UTF-16 surrogate/);
    }
    // A whole pair is text.
    expect((await post('{"value":"\\ud83d\\ude00"}')).status).toBe(200);
  });

  it('ran no handler for any refused body', () => {
    expect(handled).toBe(3); // under 1 MiB, 30 levels deep, a surrogate pair
  });
});
