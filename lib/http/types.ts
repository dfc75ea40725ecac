/** The broker's view of an HTTP exchange, free of Lambda types. */

export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  /** Path parameters of the matched route (`{provider}` of `/backchannel-logout/{provider}`). */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Lower-case header names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly cookies: ReadonlyMap<string, string>;
  readonly body: string;
  readonly requestId: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** Set-Cookie values, one cookie each. */
  readonly cookies: string[];
  readonly body: string;
}
