/** The broker's view of an HTTP exchange, free of Lambda types. */

export interface HttpRequest {
  readonly method: string;
  /** As API Gateway delivers it (an HTTP API percent-decodes it; the local runner does not). */
  readonly path: string;
  /** Path parameters of the matched route (`{provider}` of `/backchannel-logout/{provider}`). */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The query string as received, without `?`: the API proxy passes it on unchanged. */
  readonly rawQuery: string;
  /** Lower-case header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly cookies: ReadonlyMap<string, string>;
  /** The body as UTF-8 text (forms, JSON). */
  readonly body: string;
  /** The body's bytes, exactly: the API proxy passes them on unchanged. */
  readonly rawBody: Uint8Array;
  readonly requestId: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** Set-Cookie values, one cookie each. */
  readonly cookies: string[];
  readonly body: string;
  /** `body` is the base64 of the answer's bytes (binary answers of the API proxy). */
  readonly base64?: boolean;
}
