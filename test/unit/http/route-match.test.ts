/** Route keys with path parameters, as API Gateway writes them; the Lambda adapter and the local runner share this. */
import { describe, expect, it } from 'vitest';
import { matchRoute } from '../../../lib/http/route-match.js';

const routes = {
  'GET /login': 'login',
  'POST /backchannel-logout/{provider}': 'bcl',
  'ANY /api/{api}/{path+}': 'api',
  'GET /a/{x}/c': 'abc',
};

describe('matchRoute: no match', () => {
  it('another method, a missing or empty parameter, extra segments, a malformed escape', () => {
    expect(matchRoute(routes, 'GET', '/backchannel-logout/op')).toBeUndefined();
    expect(matchRoute(routes, 'POST', '/backchannel-logout')).toBeUndefined();
    expect(matchRoute(routes, 'POST', '/backchannel-logout/')).toBeUndefined();
    expect(matchRoute(routes, 'POST', '/backchannel-logout/op/more')).toBeUndefined();
    expect(matchRoute(routes, 'POST', '/backchannel-logout/%E0%A4%A')).toBeUndefined();
    expect(matchRoute(routes, 'GET', '/a/b/d')).toBeUndefined();
    expect(matchRoute(routes, 'ANY', '/api/videos')).toBeUndefined();
    expect(matchRoute(routes, 'ANY', '/api/videos/')).toBeUndefined();
    expect(matchRoute(routes, 'GET', '/login/')).toBeUndefined();
  });
});

describe('matchRoute', () => {
  it('an exact key first, with no parameters', () => {
    expect(matchRoute(routes, 'GET', '/login')).toEqual({ key: 'GET /login', route: 'login', params: {} });
  });

  it('one segment, decoded', () => {
    expect(matchRoute(routes, 'POST', '/backchannel-logout/op')).toEqual({ key: 'POST /backchannel-logout/{provider}', route: 'bcl', params: { provider: 'op' } });
    expect(matchRoute(routes, 'POST', '/backchannel-logout/o%70')?.params).toEqual({ provider: 'op' });
    expect(matchRoute(routes, 'GET', '/a/b/c')?.params).toEqual({ x: 'b' });
  });

  it('a greedy last parameter takes the rest, undecoded', () => {
    expect(matchRoute(routes, 'ANY', '/api/videos/v1/a%2Fb')?.params).toEqual({ api: 'videos', path: 'v1/a%2Fb' });
  });
});
