/**
 * Route keys as API Gateway writes them, `"METHOD /path"`, where a path segment may be `{name}`
 * (one whole segment, decoded) or, last, `{name+}` (the rest of the path, at least one segment,
 * undecoded). The Lambda adapter and the local runner find a request's route with this one
 * function, so both dispatch alike.
 */

export interface RouteMatch<T> {
  readonly key: string;
  readonly route: T;
  /** Path parameters by name. */
  readonly params: Readonly<Record<string, string>>;
}

export function matchRoute<T>(routes: Readonly<Record<string, T>>, method: string, path: string): RouteMatch<T> | undefined {
  const exact = `${method} ${path}`;
  if (Object.hasOwn(routes, exact)) return { key: exact, route: routes[exact]!, params: {} };
  const segments = path.split('/');
  for (const [key, route] of Object.entries(routes)) {
    const [m, template] = key.split(' ') as [string, string | undefined];
    if (m !== method || template === undefined || !template.includes('{')) continue;
    const params = matchTemplate(template.split('/'), segments);
    if (params) return { key, route, params };
  }
  return undefined;
}

function matchTemplate(template: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    const part = template[i]!;
    const greedy = /^\{([A-Za-z0-9_]+)\+\}$/.exec(part);
    if (greedy && i === template.length - 1) {
      const rest = segments.slice(i).join('/');
      if (segments.length <= i || rest === '') return undefined;
      params[greedy[1]!] = rest;
      return params;
    }
    const segment = segments[i];
    if (segment === undefined) return undefined;
    const name = /^\{([A-Za-z0-9_]+)\}$/.exec(part);
    if (!name) {
      if (part !== segment) return undefined;
      continue;
    }
    if (segment === '') return undefined;
    try {
      params[name[1]!] = decodeURIComponent(segment);
    } catch {
      return undefined;
    }
  }
  return segments.length === template.length ? params : undefined;
}
