import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { z } from 'zod';
import type { AllowEntry } from '../allow-list.ts';

// The guard for requests the system sends on a template's or a job's behalf (http.request).
// Such a URL comes from whoever may write templates or enqueue jobs, and from the rows that
// fill their placeholders: left alone it reaches the database port, the cloud metadata
// service (169.254.169.254), the functions' own gateway, anything on the private network.
//
// Rules, for the first request and every redirect hop:
// - only http: and https:, and no user:password@ in the URL;
// - no loopback name (localhost, *.localhost), no host of the project's own gateway;
// - every address the host resolves to must be public: not loopback, private, link-local,
//   unspecified, carrier-grade NAT, multicast or reserved, nor an IPv6 form that embeds such
//   an IPv4 address (::ffff:127.0.0.1, 64:ff9b::a00:1, 2002:7f00:1::);
// - unless the host is on the allow-list (CESAR_HTTP_ALLOW): then the address rules are
//   skipped, the scheme and credential rules are not.
// The WHATWG URL parser already writes every IPv4 spelling (2130706433, 0x7f000001, 0x7f.1,
// 0177.0.0.1, 127.1) as dotted decimal and IPv6 in its short form, so the checks below see
// one spelling per address.
//
// DNS rebinding: the name is resolved once, every address checked, and the connection is
// made to those checked addresses: the request goes through node:http(s) with a `lookup`
// that answers with them and nothing else (fetch has no such hook). A name that answers a
// public address to the check and 127.0.0.1 a moment later cannot swap the target: nothing
// looks the name up a second time. TLS still verifies the certificate against the name
// (SNI and verification use the URL's host, not the address). Verified under Node 20 and
// Deno 2.9 (tests/outbound.test.ts runs the pinning under both). Not covered: a public
// address that forwards to private ones (an open proxy, a NAT64 gateway for an address not
// embedded in the IPv6 one); the allow-list trusts its hosts' every address.

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Every address a name resolves to (A and AAAA). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface OutboundPolicy {
  allow: readonly AllowEntry[];
  /** Hosts refused whatever they resolve to, unless allowed: the project's own gateway. */
  refusedHosts?: readonly string[];
  /** Absent: the system resolver. Tests give names of their own. */
  resolve?: Resolver;
}

/** Nothing allowed beyond public addresses: what a drain uses unless it is told otherwise. */
export const strictPolicy: OutboundPolicy = { allow: [] };

/**
 * The functions' policy, from their configuration: public addresses and the hosts
 * CESAR_HTTP_ALLOW names. The project's own gateway (SUPABASE_URL's host) is refused although
 * it is public: a template must not call the functions, or the APIs beside them, on the
 * system's behalf.
 */
export function outboundPolicy(
  config: { httpAllow?: readonly AllowEntry[]; supabaseUrl?: string | null },
): OutboundPolicy {
  const gateway = config.supabaseUrl ? parseUrl(config.supabaseUrl)?.hostname : undefined;
  return { allow: config.httpAllow ?? [], refusedHosts: gateway ? [gateway] : [] };
}

/** A target the rules refuse: retrying cannot change that, so the job fails at once. */
export class OutboundRefusedError extends Error {
  constructor(url: URL, readonly reason: string) {
    super(`refused ${withoutCredentials(url)}: ${reason}`);
    this.name = 'OutboundRefusedError';
  }
}

// Settings a header may read by name. cesar.setting() reads any Vault secret or local setting,
// the function secret (cesar_function_secret) among them: a template that could name one would
// send it to any listener. Only settings made for the purpose, named outbound_*, are read.
export const outboundSecretName = z.string().superRefine((name, ctx) => {
  if (!/^outbound_[a-z0-9_]+$/.test(name)) {
    ctx.addIssue({
      code: 'custom',
      message: `"${name.slice(0, 100)}" may not be sent: only settings named ` +
        'outbound_<name> (lower case) are read for outbound headers',
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The allow-list

/** A host as compared: `example.com.` (the fully qualified form) is `example.com`. */
const bare = (hostname: string) => hostname.replace(/\.$/, '');

function isAllowed(url: URL, allow: readonly AllowEntry[]): boolean {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return allow.some((entry) =>
    bare(entry.host) === bare(url.hostname) && (entry.port === undefined || entry.port === port)
  );
}

/**
 * Headers a template or job may not set: they would change where the request goes (Host also
 * names the TLS server, so `Host: <gateway>` sent to the gateway's address reached it) or how
 * its body is framed. The request sets them itself.
 */
const FORBIDDEN_HEADER =
  /^(host|content-length|transfer-encoding|connection|keep-alive|upgrade|te|trailer|expect|proxy-.*)$/i;

/** Null when a template or job may set this header; otherwise why not. */
export function headerRefusal(name: string): string | null {
  return FORBIDDEN_HEADER.test(name.trim())
    ? `header ${name} is set by the request itself and may not be given`
    : null;
}

/** A zod check for a record of outbound headers: each forbidden name is an issue of its own. */
export function refuseForbiddenHeaders(headers: Record<string, unknown>, ctx: z.RefinementCtx) {
  for (const name of Object.keys(headers)) {
    const why = headerRefusal(name);
    if (why) ctx.addIssue({ code: 'custom', path: [name], message: why });
  }
}

// ---------------------------------------------------------------------------------------------
// Addresses

type Ipv4Range = readonly [base: number, bits: number, what: string];

// Everything here is unreachable from the internet or means "this host": 0.0.0.0 and ::
// connect to the local host on Linux, 169.254.169.254 is the cloud metadata service.
const IPV4_REFUSED: readonly Ipv4Range[] = [
  [ipv4('0.0.0.0'), 8, 'unspecified ("this network", 0.0.0.0/8)'],
  [ipv4('10.0.0.0'), 8, 'private (10.0.0.0/8)'],
  [ipv4('100.64.0.0'), 10, 'carrier-grade NAT (100.64.0.0/10)'],
  [ipv4('127.0.0.0'), 8, 'loopback (127.0.0.0/8)'],
  [ipv4('169.254.0.0'), 16, 'link-local, the cloud metadata service among them (169.254.0.0/16)'],
  [ipv4('172.16.0.0'), 12, 'private (172.16.0.0/12)'],
  [ipv4('192.168.0.0'), 16, 'private (192.168.0.0/16)'],
  [ipv4('224.0.0.0'), 4, 'multicast (224.0.0.0/4)'],
  [ipv4('240.0.0.0'), 4, 'reserved or broadcast (240.0.0.0/4)'],
  [ipv4('192.0.0.0'), 24, 'reserved for protocol assignments (192.0.0.0/24)'],
  [ipv4('192.0.2.0'), 24, 'reserved for documentation (192.0.2.0/24)'],
  [ipv4('198.51.100.0'), 24, 'reserved for documentation (198.51.100.0/24)'],
  [ipv4('203.0.113.0'), 24, 'reserved for documentation (203.0.113.0/24)'],
  [ipv4('198.18.0.0'), 15, 'reserved for benchmarking (198.18.0.0/15)'],
  [ipv4('192.88.99.0'), 24, 'the deprecated 6to4 relay anycast (192.88.99.0/24)'],
];

/** How an IPv6 range is refused: for a reason, or by the IPv4 address it embeds. */
type Ipv6Rule =
  | { base: bigint; bits: number; what: string }
  | { base: bigint; bits: number; embeds: string; at: number };

// Order matters: :: and ::1 before ::/96, the forms that embed an IPv4 address before it.
const IPV6_RULES: readonly Ipv6Rule[] = [
  { base: ipv6('::'), bits: 128, what: 'unspecified (::)' },
  { base: ipv6('::1'), bits: 128, what: 'loopback (::1)' },
  { base: ipv6('::ffff:0:0'), bits: 96, embeds: 'IPv4-mapped', at: 0 },
  { base: ipv6('::ffff:0:0:0'), bits: 96, embeds: 'IPv4-translated', at: 0 },
  { base: ipv6('64:ff9b::'), bits: 96, embeds: 'NAT64', at: 0 },
  { base: ipv6('2002::'), bits: 16, embeds: '6to4', at: 80 },
  { base: ipv6('::'), bits: 96, what: 'IPv4-compatible, deprecated (::/96)' },
  { base: ipv6('fc00::'), bits: 7, what: 'unique local, private (fc00::/7)' },
  { base: ipv6('fe80::'), bits: 10, what: 'link-local (fe80::/10)' },
  { base: ipv6('fec0::'), bits: 10, what: 'site-local, deprecated (fec0::/10)' },
  { base: ipv6('ff00::'), bits: 8, what: 'multicast (ff00::/8)' },
  { base: ipv6('64:ff9b:1::'), bits: 48, what: 'local-use NAT64 (64:ff9b:1::/48)' },
  { base: ipv6('100::'), bits: 64, what: 'discard-only (100::/64)' },
  { base: ipv6('2001::'), bits: 32, what: 'a Teredo tunnel (2001::/32)' },
  { base: ipv6('2001:db8::'), bits: 32, what: 'reserved for documentation (2001:db8::/32)' },
];

/**
 * Why an address may not be reached, or null when it is public. Takes what DNS answers and
 * what the URL parser writes: dotted IPv4, IPv6 with or without brackets.
 */
export function addressRefusal(address: string): string | null {
  const v4 = parseIpv4(address);
  if (v4 !== null) return ipv4Refusal(v4);
  const v6 = parseIpv6(address);
  if (v6 === null) return 'not an IP address';
  for (const rule of IPV6_RULES) {
    const shift = BigInt(128 - rule.bits);
    if (v6 >> shift !== rule.base >> shift) continue;
    if ('what' in rule) return rule.what;
    const embedded = ipv4Refusal(Number((v6 >> BigInt(rule.at)) & 0xffff_ffffn));
    return embedded && `${rule.embeds} ${embedded}`;
  }
  return null;
}

function ipv4Refusal(address: number): string | null {
  for (const [base, bits, what] of IPV4_REFUSED) {
    if (address >>> (32 - bits) === base >>> (32 - bits)) return what;
  }
  return null;
}

function parseIpv4(text: string): number | null {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!match) return null;
  const octets = match.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return null;
  return octets.reduce((sum, o) => sum * 256 + o, 0);
}

function parseIpv6(text: string): bigint | null {
  let s = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '').toLowerCase();
  // A dotted IPv4 tail (::ffff:127.0.0.1) is the last two groups.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const v4 = parseIpv4(dotted[2]!);
    if (v4 === null) return null;
    s = `${dotted[1]}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  let result = 0n;
  for (
    const group of [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail]
  ) {
    if (!/^[0-9a-f]{1,4}$/.test(group)) return null;
    result = (result << 16n) | BigInt(parseInt(group, 16));
  }
  return result;
}

function ipv4(text: string): number {
  return parseIpv4(text)!;
}

function ipv6(text: string): bigint {
  return parseIpv6(text)!;
}

/** The address a URL's host spells out, or null for a name. */
function ipLiteral(hostname: string): string | null {
  if (hostname.startsWith('[')) return hostname.slice(1, -1);
  return parseIpv4(hostname) === null ? null : hostname;
}

// RFC 6761: localhost and every name under it are the loopback; refused by name, so that
// the answer does not depend on the resolver and a template save can tell without DNS.
function isLoopbackName(hostname: string): boolean {
  return /(^|\.)localhost\.?$/.test(hostname);
}

// ---------------------------------------------------------------------------------------------
// Checks

/**
 * What refuses a URL before any DNS: its scheme, credentials in it, a loopback name, the
 * project's own gateway, an IP address that is not public. Null: nothing yet (the host may
 * still resolve to a refused address). Template saves use this alone.
 */
export function urlRefusal(
  url: URL,
  policy: Pick<OutboundPolicy, 'allow' | 'refusedHosts'>,
): string | null {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `scheme ${url.protocol} is not allowed, only http: and https:`;
  }
  if (url.username !== '' || url.password !== '') {
    return 'credentials in the URL are not allowed (send them in a header from an outbound_ setting)';
  }
  if (isAllowed(url, policy.allow)) return null;
  if (policy.refusedHosts?.some((host) => bare(host) === bare(url.hostname))) {
    return `${url.hostname} is this project's own gateway (SUPABASE_URL)`;
  }
  if (isLoopbackName(url.hostname)) return `${url.hostname} is a loopback name`;
  const literal = ipLiteral(url.hostname);
  const refusal = literal === null ? null : addressRefusal(literal);
  return refusal && `${url.hostname} is ${refusal}`;
}

/**
 * Checks a URL and resolves its host: the addresses to connect to, every one of them allowed.
 * Throws OutboundRefusedError for a refused target; a name that does not resolve is an
 * ordinary error (DNS may answer later).
 */
export async function checkTarget(
  url: URL,
  policy: OutboundPolicy,
  signal?: AbortSignal,
): Promise<ResolvedAddress[]> {
  const refusal = urlRefusal(url, policy);
  if (refusal) throw new OutboundRefusedError(url, refusal);
  const literal = ipLiteral(url.hostname);
  if (literal !== null) return [{ address: literal, family: literal.includes(':') ? 6 : 4 }];
  // The lookup itself cannot be cancelled; the request gives up waiting for it when told to.
  const lookup = (policy.resolve ?? systemResolver)(url.hostname);
  const addresses = await (signal ? untilAborted(lookup, signal) : lookup);
  if (addresses.length === 0) throw new Error(`${url.hostname} resolves to no address`);
  if (!isAllowed(url, policy.allow)) {
    for (const { address } of addresses) {
      const why = addressRefusal(address);
      if (why) {
        throw new OutboundRefusedError(url, `${url.hostname} resolves to ${address}, ${why}`);
      }
    }
  }
  return addresses;
}

/** `promise`, or the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true });

function parseUrl(text: string, base?: URL): URL | null {
  try {
    return new URL(text, base);
  } catch {
    return null;
  }
}

function withoutCredentials(url: URL): string {
  if (url.username === '' && url.password === '') return url.href;
  const shown = new URL(url.href);
  shown.username = '';
  shown.password = '';
  return shown.href;
}

// ---------------------------------------------------------------------------------------------
// Requests

export interface OutboundInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Headers that carry a secret: like Authorization and Cookie, never sent to another origin. */
  sensitiveHeaders?: readonly string[];
}

export interface OutboundResponse {
  /** The URL that answered, after redirects. */
  url: string;
  status: number;
  headers: Headers;
  /** The body's first MAX_BODY_BYTES, as UTF-8. */
  text: string;
}

/** Redirects followed before the request is refused; fetch follows 20, five is plenty. */
export const MAX_REDIRECTS = 5;

// Kept of an answer's body: callers keep 2,000 characters of it, and a target must not be able
// to fill the function's memory.
const MAX_BODY_BYTES = 64 * 1024;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * Sends a request under the rules above, following up to MAX_REDIRECTS redirects, every hop
 * checked and pinned to the addresses its check resolved.
 */
export async function outboundRequest(
  policy: OutboundPolicy,
  target: string,
  init: OutboundInit,
): Promise<OutboundResponse> {
  let url = new URL(target);
  let request = { method: init.method, headers: init.headers, body: init.body };
  for (let redirects = 0;; redirects++) {
    const addresses = await checkTarget(url, policy, init.signal);
    const answer = await send(url, addresses, request, init.signal).catch((err) => {
      // node:http says only "aborted": the signal's reason says why (a timeout, the lease).
      throw init.signal?.aborted ? init.signal.reason : err;
    });
    const location = REDIRECTS.has(answer.status) ? answer.headers.get('location') : null;
    if (location === null) return { url: url.href, ...answer };
    if (redirects === MAX_REDIRECTS) {
      throw new OutboundRefusedError(url, `more than ${MAX_REDIRECTS} redirects`);
    }
    const next = parseUrl(location, url);
    if (next === null) throw new OutboundRefusedError(url, 'redirect to an invalid URL');
    request = redirected(request, answer.status, url, next, init.sensitiveHeaders ?? []);
    url = next;
  }
}

/** The next hop's request, as fetch would make it. */
function redirected(
  request: { method: string; headers: Record<string, string>; body?: string },
  status: number,
  from: URL,
  to: URL,
  sensitive: readonly string[],
) {
  // 303 turns any method into GET, 301 and 302 turn POST into GET; the body goes with it.
  const toGet = status === 303 || ((status === 301 || status === 302) && request.method === 'POST');
  const dropped = new Set<string>();
  if (toGet) dropped.add('content-type');
  if (to.origin !== from.origin) {
    for (const name of [...CREDENTIAL_HEADERS, ...sensitive]) dropped.add(name.toLowerCase());
  }
  return {
    method: toGet ? 'GET' : request.method,
    headers: Object.fromEntries(
      Object.entries(request.headers).filter(([name]) => !dropped.has(name.toLowerCase())),
    ),
    body: toGet ? undefined : request.body,
  };
}

/** One request to a checked URL, connected to the checked addresses only. */
async function send(
  url: URL,
  addresses: readonly ResolvedAddress[],
  request: { method: string; headers: Record<string, string>; body?: string },
  signal?: AbortSignal,
): Promise<Omit<OutboundResponse, 'url'>> {
  const body = request.body === undefined ? undefined : new TextEncoder().encode(request.body);
  const headers = Object.fromEntries(
    Object.entries(request.headers).filter(([name]) => headerRefusal(name) === null),
  );
  if (body) headers['Content-Length'] = String(body.byteLength);
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = (url.protocol === 'https:' ? https : http).request(url, {
      method: request.method,
      headers,
      // Its own connection every time: a pooled socket is found by name, not by address.
      agent: false,
      lookup: pinnedLookup(addresses),
      signal,
    }, resolve);
    req.on('error', reject);
    req.end(body);
  });
  const decoder = new TextDecoder();
  let text = '';
  let size = 0;
  for await (const chunk of response as AsyncIterable<Uint8Array>) {
    const kept = chunk.subarray(0, MAX_BODY_BYTES - size);
    text += decoder.decode(kept, { stream: true });
    size += kept.byteLength;
    // Leaving the loop destroys the response: the rest is never read.
    if (size >= MAX_BODY_BYTES) break;
  }
  text += decoder.decode();
  return { status: response.statusCode ?? 0, headers: headersOf(response), text };
}

/** A lookup that answers with the checked addresses and never asks DNS. */
function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (hostname, options, callback) => {
    const wanted = options.family === 'IPv4'
      ? 4
      : options.family === 'IPv6'
      ? 6
      : Number(options.family ?? 0);
    const usable = addresses.filter((a) => wanted === 0 || a.family === wanted);
    if (usable.length === 0) {
      const error = Object.assign(new Error(`no checked IPv${wanted} address for ${hostname}`), {
        code: 'ENOTFOUND',
      });
      callback(error, '', wanted);
    } else if (options.all) {
      callback(null, usable.map(({ address, family }) => ({ address, family })));
    } else callback(null, usable[0]!.address, usable[0]!.family);
  };
}

function headersOf(response: http.IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      headers.append(name, one);
    }
  }
  return headers;
}
