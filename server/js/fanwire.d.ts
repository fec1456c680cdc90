// Type declarations for fanwire.js, the browser client of a fanwire node.

export const VERSION: string;

/** A transport name: WebSocket (GET /ws), Server-Sent Events (GET /sse), long-polling (GET /poll). */
export type TransportName = "websocket" | "sse" | "poll";

export interface FanwireOptions {
  /** Resolves to a JWT sent as ?token= on connect; called again before exp and after a "token expired" (4001) close. */
  getToken?: () => Promise<string> | string;
  /** Transports to try, in order (default ["websocket", "sse", "poll"]); unavailable ones are skipped. */
  transports?: TransportName[];
  /** Full-jitter backoff: retry n waits uniformly in [0, min(backoffCap, backoffBase * 2^n)) ms. Defaults 500, 30000. */
  backoffBase?: number;
  backoffCap?: number;
  /** Added (uniformly random, ms) to a 1001 or 4005 "reconnect in Nms" hint. Default 250. */
  hintJitter?: number;
  /** Connects in a row that fail before opening before the next transport is tried. Default 3. */
  blockedAfter?: number;
  /** A connect not open after this many ms counts as failed. Default 10000. */
  connectTimeout?: number;
  /** Refresh the token at this fraction of its lifetime. Default 0.8. */
  refreshAt?: number;
  /** publish() and presence() reject after this many ms without an answer. Default 10000. */
  requestTimeout?: number;
  /** An SSE stream without its first event after this many ms is taken as blocked (a buffering proxy): the next transport is tried at once. Default 5000. */
  streamOpenTimeout?: number;
  /** Receives errors no "error" listener or topic onError took. Default: console.warn. */
  onError?: (err: FanwireError) => void;
  /** Replaces globals, for tests and non-browser runtimes. */
  env?: Partial<FanwireEnv>;
}

export interface FanwireEnv {
  WebSocket: { new (url: string): WebSocket };
  EventSource?: { new (url: string): EventSource };
  fetch?: (url: string, init?: RequestInit) => Promise<Response>;
  AbortController?: { new (): AbortController };
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (id: unknown) => void;
  now: () => number;
  random: () => number;
}

/** What onMessage gets with each message. */
export interface MessageMeta {
  topic: string;
  seq: number | null;
  /** The topic's epoch: seqs of different epochs are unrelated. */
  epoch: string | null;
  /** The topic's current value, sent when subscribing (last-value topics) or after a reset. */
  snapshot: boolean;
  /** This message replaced older ones the connection was too slow to receive. */
  conflated: boolean;
  /** With conflated: the seqs [first, last] it replaced. */
  skipped: [number, number] | null;
  /** Seqs [first, last] missed without a reset or conflation (also reported as an error "gap"). */
  gap: [number, number] | null;
  /** An ephemeral message (typing indicator, cursor): seq is null, it is never replayed. */
  ephemeral: boolean;
  /** The sender of a client publication, stamped by the server (namespaces with stamp_sender). */
  from: { user?: string; info?: unknown; anonymous?: boolean } | null;
}

/** The resume point of a topic is gone: deliveries continue at from. */
export interface ResetInfo {
  topic: string;
  from: number;
  epoch: string;
  previousEpoch: string | null;
  /** The last seq the app saw before the reset (of previousEpoch). */
  lastSeq: number | null;
}

export interface SubscribeHandlers<T = unknown> {
  onMessage?: (data: T, meta: MessageMeta) => void;
  onReset?: (info: ResetInfo) => void;
  /** The node acknowledged the subscription (after every connect); delta: it sends Fossil deltas. */
  onSubscribed?: (info: { topic: string; epoch: string | null; delta: boolean }) => void;
  /** Requires a node with presence (issue 12). */
  onJoin?: (info: Record<string, unknown>) => void;
  onLeave?: (info: Record<string, unknown>) => void;
  onError?: (err: FanwireError) => void;
  /**
   * Ask for Fossil deltas against the previous message (nodes run with
   * --delta for this topic). Applied by the client: onMessage always gets
   * full data. Decided by the topic's first subscriber.
   */
  delta?: boolean;
}

export interface Subscription {
  readonly topic: string;
  unsubscribe(): void;
}

export type ConnectionState = "connecting" | "connected" | "disconnected" | "closed";

export interface StateEvent {
  state: ConnectionState;
  transport: TransportName;
  /** connecting: failed connects since the last served one. */
  attempt?: number;
  /** disconnected: ms until the next connect. */
  delay?: number;
  /** disconnected: the close code and reason. */
  code?: number;
  reason?: string;
}

export interface FanwireError {
  /** "gap", "token", "bad_frame", or a server error code (server: true). */
  code: string;
  message: string;
  topic?: string;
  from?: number;
  to?: number;
  server?: boolean;
}

export class Fanwire {
  constructor(url: string, options?: FanwireOptions);
  readonly url: string;
  readonly state: ConnectionState;
  readonly transport: TransportName;
  subscribe<T = unknown>(topic: string, handlers?: SubscribeHandlers<T> | ((data: T, meta: MessageMeta) => void)): Subscription;
  /**
   * Requires a node with client publish (issue 12). Over SSE and
   * long-polling it is a POST /publish to the node with the same token.
   */
  publish(topic: string, data: unknown, options?: { ephemeral?: boolean }): Promise<Record<string, unknown>>;
  /** Requires a node with presence (issue 12). Over SSE and long-polling: POST /presence. */
  presence(topic: string): Promise<Record<string, unknown>>;
  /** Counts only. Requires a namespace with presence. */
  presenceStats(topic: string): Promise<Record<string, unknown>>;
  on(event: "state", fn: (s: StateEvent) => void): () => void;
  on(event: "error", fn: (e: FanwireError) => void): () => void;
  off(event: "state" | "error", fn: (...args: any[]) => void): void;
  close(): void;
}
export default Fanwire;

export const DEFAULTS: Readonly<Required<Omit<FanwireOptions, "getToken" | "onError" | "env">>>;

export function backoffDelay(attempt: number, base?: number, cap?: number, random?: () => number): number;
export function reconnectHint(code: number, reason: string): number | null;
export function validTopic(name: string): boolean;
export function jwtTimes(token: string): { exp: number | null; iat: number | null } | null;
export function refreshDelay(token: string, now: number, fraction?: number, obtainedAt?: number): number | null;

export interface ResumePoint {
  since: number;
  epoch: string | null;
}

export class TopicState {
  constructor(name: string);
  readonly name: string;
  epoch: string | null;
  lastSeq: number | null;
  floor: number | null;
  /** "fossil" while deltas are asked for; null after one could not be applied. */
  delta: "fossil" | null;
  base: Uint8Array | null;
  resumePoint(): ResumePoint | null;
  ack(epoch?: string, seq?: number): void;
  reset(from: number, epoch: string): ResetInfo;
  accept(msg: { seq: number; snapshot?: boolean; conflated?: boolean; skipped?: [number, number] }):
    | { deliver: true; meta: MessageMeta }
    | { deliver: false; duplicate?: boolean; invalid?: boolean };
}

export interface SubscribeOp {
  op: "subscribe";
  topics: string[];
  since?: Record<string, number>;
  epochs?: Record<string, string>;
  delta?: "fossil";
}
export function subscribeOps(states: Iterable<TopicState>): SubscribeOp[];
/** The URL query of /sse and /poll for these topics: topics, since and epochs in their URL form. */
export function subscriptionQuery(states: Iterable<TopicState>): { topics: string; since?: string; epochs?: string };

export interface Transport {
  send(op: object): boolean;
  close(code?: number, reason?: string): void;
}
export interface TransportClass {
  new (
    endpoint: URL,
    env: FanwireEnv,
    on: {
      open(): void;
      message(text: string): void;
      close(info: { code: number; reason: string; opened: boolean; blocked?: boolean }): void;
      query?(): { topics: string; since?: string; epochs?: string };
      openTimeout?: number;
    },
  ): Transport;
  available(env: FanwireEnv): boolean;
  endpoint(url: string): URL;
  /** Subscriptions travel in the URL (a change is a new connection). */
  subscribesInURL?: boolean;
}
export const WebSocketTransport: TransportClass;
export const SSETransport: TransportClass;
export const PollTransport: TransportClass;
/** null entries are known names not built yet (skipped). */
export const transports: Record<TransportName, TransportClass | null>;

/** Fossil delta decoding (the node's "delta":"fossil" deliveries). */
export function applyFossilDelta(base: Uint8Array, delta: Uint8Array): Uint8Array;
export function fossilChecksum(bytes: Uint8Array): number;
/** The bytes of a delta delivery's data string (one character per byte). */
export function deltaBytes(s: string): Uint8Array;
/** The UTF-8 bytes of a plain delivery's data as sent, or null. */
export function deliveryBase(text: string, msg: Record<string, unknown>): Uint8Array | null;
export function applyDelivery(base: Uint8Array, msg: { data: string }): { bytes: Uint8Array; data: unknown };
