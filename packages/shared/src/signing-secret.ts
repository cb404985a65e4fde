// Standard Webhooks signing secrets (`whsec_<base64>`), as configuration reads them: a base
// module, like allow-list.ts, so that config.ts can name a malformed one at start-up. Signing
// and verifying are in http/signing.ts.

/**
 * How far a delivery's timestamp may be from the receiver's clock, either way: 5 minutes, the
 * specification's suggestion. Older deliveries are refused as possible replays; ones from the
 * future as a sender's clock gone wrong (or a replay prepared in advance).
 */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export const SECRET_PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** The shortest key accepted: 128 bits. The specification suggests 24 to 64 bytes. */
const MIN_KEY_BYTES = 16;

/** Why a `whsec_<base64>` secret cannot be used, or null when it can. Never repeats the secret. */
export function signingSecretProblem(secret: string): string | null {
  if (!secret.startsWith(SECRET_PREFIX)) return 'must be written whsec_<base64>';
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) {
    return 'the part after whsec_ must be standard base64 (A-Z a-z 0-9 + /, = padding)';
  }
  if (atob(encoded).length < MIN_KEY_BYTES) {
    return `the key must be at least ${MIN_KEY_BYTES} bytes once decoded`;
  }
  return null;
}

/** Secrets given as one string: separated by spaces or commas (an old and a new one). */
export function splitSecrets(value: string): string[] {
  return value.split(/[\s,]+/).filter((s) => s !== '');
}
