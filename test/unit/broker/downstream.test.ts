import { describe, expect, it } from 'vitest';
import { thrownBy } from '../../support/errors.js';
import { parseLoginResult, renewalDue } from '../../../lib/broker/downstream.js';
import { UpstreamMalformedError, UpstreamUnavailableError } from '../../../lib/errors.js';

/** A LoginResponse as XProtect's ServerCommandService (WCF) sends it. */
function loginResponse(result: string): string {
  return (
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">' +
    '<s:Body>' +
    '<LoginResponse xmlns="http://videoos.net/2/XProtectCSServerCommand">' +
    '<LoginResult xmlns:i="http://www.w3.org/2001/XMLSchema-instance">' +
    result +
    '</LoginResult>' +
    '</LoginResponse>' +
    '</s:Body>' +
    '</s:Envelope>'
  );
}

const FULL_RESULT =
  '\n  <RegistrationTime>2024-05-01T10:00:00.1234567Z</RegistrationTime>' +
  '\n  <TimeToLive><MicroSeconds>14400000000</MicroSeconds></TimeToLive>' +
  '\n  <TimeToLiveLimited>false</TimeToLiveLimited>' +
  '\n  <Token>TOKEN#abc&amp;def</Token>\n';

const FAULT =
  '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>' +
  '<s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/ws/2005/05/addressing/none">a:ActionNotSupported</faultcode>' +
  '<faultstring xml:lang="en-US">The message could not be processed.</faultstring></s:Fault>' +
  '</s:Body></s:Envelope>';

function malformed(status: number, xml: string): UpstreamMalformedError {
  const caught = thrownBy(() => parseLoginResult(status, xml), UpstreamMalformedError);
  expect(caught).toMatchObject({ status: 502, code: 'server_error' });
  return caught;
}

describe('parseLoginResult: rejections', () => {
  it('refuses a SOAP fault with HTTP 200', () => {
    expect(malformed(200, FAULT).message).toMatch(/fault/i);
  });

  it('refuses a SOAP fault with HTTP 500', () => {
    expect(malformed(500, FAULT).message).toContain('500');
  });

  it('refuses a non-200 answer without a fault', () => {
    malformed(401, '');
    malformed(302, '');
  });

  it.each([500, 502, 503, 504])('takes HTTP %i without a SOAP fault as the VMS unavailable (503 temporarily_unavailable), even with a LoginResult', (status) => {
    for (const body of ['<html><body>Service Unavailable</body></html>', '', loginResponse(FULL_RESULT)]) {
      expect(thrownBy(() => parseLoginResult(status, body), UpstreamUnavailableError)).toMatchObject({ status: 503, code: 'temporarily_unavailable' });
    }
  });

  it('refuses an answer without a LoginResult', () => {
    malformed(200, '<html><body>Sign in</body></html>');
    malformed(200, '');
  });

  it('refuses a LoginResult without a Token', () => {
    malformed(200, loginResponse(FULL_RESULT.replace(/<Token>.*<\/Token>/, '')));
  });

  it('refuses an empty or nil Token', () => {
    malformed(200, loginResponse(FULL_RESULT.replace(/<Token>.*<\/Token>/, '<Token></Token>')));
    malformed(200, loginResponse(FULL_RESULT.replace(/<Token>.*<\/Token>/, '<Token i:nil="true"/>')));
  });

  it('refuses a LoginResult without TimeToLive/MicroSeconds', () => {
    malformed(200, loginResponse(FULL_RESULT.replace(/<TimeToLive>.*<\/TimeToLive>/, '')));
    malformed(200, loginResponse(FULL_RESULT.replace('<MicroSeconds>14400000000</MicroSeconds>', '')));
  });

  it('refuses a MicroSeconds that is not digits', () => {
    malformed(200, loginResponse(FULL_RESULT.replace('14400000000', '-1')));
    malformed(200, loginResponse(FULL_RESULT.replace('14400000000', '1.5e10')));
  });
});

describe('parseLoginResult', () => {
  it('reads Token (XML-unescaped) and TimeToLive/MicroSeconds', () => {
    const xml = '<?xml version="1.0" encoding="utf-8"?>' + loginResponse(FULL_RESULT);
    expect(parseLoginResult(200, xml)).toEqual({ token: 'TOKEN#abc&def', microSeconds: 14_400_000_000 });
  });

  it('reads prefixed elements', () => {
    const xml =
      '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>' +
      '<x:LoginResponse xmlns:x="http://videoos.net/2/XProtectCSServerCommand"><x:LoginResult>' +
      '<x:TimeToLive><x:MicroSeconds> 3600000000 </x:MicroSeconds></x:TimeToLive>' +
      '<x:TimeToLiveLimited>true</x:TimeToLiveLimited>' +
      '<x:Token>TOKEN#1&lt;2&gt;#host//ServerConnector#</x:Token>' +
      '</x:LoginResult></x:LoginResponse></soap:Body></soap:Envelope>';
    expect(parseLoginResult(200, xml)).toEqual({ token: 'TOKEN#1<2>#host//ServerConnector#', microSeconds: 3_600_000_000 });
  });

  it('decodes &amp; last, so an escaped entity stays literal', () => {
    const xml = loginResponse(FULL_RESULT.replace('TOKEN#abc&amp;def', 'a&amp;lt;b'));
    expect(parseLoginResult(200, xml).token).toBe('a&lt;b');
  });
});

describe('renewalDue', () => {
  const now = 1_700_000_000;

  it('is due when there is no grant', () => {
    expect(renewalDue(undefined, undefined, now)).toBe(true);
    expect(renewalDue(undefined, 14_400, now)).toBe(true);
  });

  it('is due within a fifth of the lifetime', () => {
    expect(renewalDue(now + 2_881, 14_400, now)).toBe(false);
    expect(renewalDue(now + 2_880, 14_400, now)).toBe(true);
    expect(renewalDue(now + 10, 14_400, now)).toBe(true);
  });

  it('is due when already expired', () => {
    expect(renewalDue(now - 1, 14_400, now)).toBe(true);
  });

  it('keeps a margin of at least 60 seconds', () => {
    expect(renewalDue(now + 61, 100, now)).toBe(false);
    expect(renewalDue(now + 60, 100, now)).toBe(true);
    expect(renewalDue(now + 61, undefined, now)).toBe(false);
    expect(renewalDue(now + 60, undefined, now)).toBe(true);
  });

  it('is not due with most of the lifetime left', () => {
    expect(renewalDue(now + 14_400, 14_400, now)).toBe(false);
  });
});
