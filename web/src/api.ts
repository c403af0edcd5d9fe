// The API clients (gRPC-web through Connect-ES), the API key and the caller's access.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AccessScope, ConnectionService, type Access } from "./gen/ibstream/v1/connection_pb";
import { MarketDataService } from "./gen/ibstream/v1/market_data_pb";

const KEY_ITEM = "ibstream.apiKey";

/** The API key, kept for this browser tab's session only. */
export function apiKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

const bearer: Interceptor = (next) => (req) => {
  const key = apiKey();
  if (key) req.header.set("authorization", `Bearer ${key}`);
  return next(req);
};

const transport = createGrpcWebTransport({ baseUrl: location.origin, interceptors: [bearer] });

export const connection = createClient(ConnectionService, transport);
export const marketData = createClient(MarketDataService, transport);

/** What the caller may do; read-scope users see no admin controls. */
export let access: Access | undefined;

export function isAdmin(): boolean {
  return access?.scope === AccessScope.ADMIN;
}

/** Asks the server who we are; throws UNAUTHENTICATED when a key is needed. */
export async function loadAccess(): Promise<Access> {
  access = await connection.getAccess({});
  return access;
}

export function isUnauthenticated(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Unauthenticated;
}

export function isAborted(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Canceled;
}

/** The server's words for a failure. */
export function describe(err: unknown): string {
  if (err instanceof ConnectError) return `${Code[err.code]}: ${err.rawMessage}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * The field an INVALID_ARGUMENT names: the server's message reads `field: reason`
 * (`port: must be between 1 and 65535`).
 */
export function invalidField(err: unknown): { field: string; reason: string } | undefined {
  if (!(err instanceof ConnectError) || err.code !== Code.InvalidArgument) return undefined;
  const match = /^([A-Za-z_][\w.\[\]]*): (.*)$/s.exec(err.rawMessage);
  return match ? { field: match[1], reason: match[2] } : undefined;
}

/**
 * Runs a server stream until `signal` aborts, starting it again after a failure (the
 * server restarting, a network blip) with a growing pause; `onError` hears each failure.
 */
export async function follow<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  onMessage: (message: T) => void,
  signal: AbortSignal,
  onError: (err: unknown) => void,
): Promise<void> {
  let pause = 500;
  while (!signal.aborted) {
    try {
      for await (const message of open(signal)) {
        pause = 500;
        onMessage(message);
      }
    } catch (err) {
      if (signal.aborted) return;
      onError(err);
    }
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 10_000);
  }
}
