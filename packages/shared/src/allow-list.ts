// CESAR_HTTP_ALLOW, the hosts outbound requests may reach whatever their addresses (see
// http/outbound.ts for the rules they skip). Read by the configuration, used by the guard.

/** The CESAR_HTTP_ALLOW entry a URL's host and port must match to skip the address rules. */
export interface AllowEntry {
  /** As the URL parser writes a host: lower case, IPv4 dotted decimal, IPv6 in brackets. */
  host: string;
  /** Absent: every port of the host. */
  port?: number;
}

const ALLOW_ENTRY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/;

/**
 * Parses CESAR_HTTP_ALLOW: entries separated by commas, each `host` or `host:port`, where host
 * is a DNS name, an IPv4 address or an IPv6 address in brackets. Examples:
 * `api.internal`, `10.0.0.5:8080`, `[fd00::1]:443`, `127.0.0.1:54321,hooks.internal`.
 * Spaces around entries are ignored; no wildcards, no schemes, no paths. Hosts are compared
 * as the URL parser writes them (case-insensitive; `2130706433` means `127.0.0.1`), by name
 * for names: allowing `localhost` does not allow `127.0.0.1`. An entry without a port allows
 * every port; with one, only that port (the URL's, or 80/443 when it gives none).
 * Throws an error naming the first malformed entry.
 */
export function parseAllowList(raw: string): AllowEntry[] {
  return raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '').map(
    (entry) => {
      const match = ALLOW_ENTRY.exec(entry);
      const host = match ? hostOf(match[1]!) : null;
      const port = match?.[2] === undefined ? undefined : Number(match[2]);
      if (host === null || (port !== undefined && (port < 1 || port > 65_535))) {
        throw new Error(
          `"${entry}" is not host or host:port (e.g. api.internal, 10.0.0.5:8080, [fd00::1]:443)`,
        );
      }
      return port === undefined ? { host } : { host, port };
    },
  );
}

function hostOf(raw: string): string | null {
  try {
    return new URL(`http://${raw}/`).hostname;
  } catch {
    return null;
  }
}
