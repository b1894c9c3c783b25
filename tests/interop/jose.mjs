// Bridge to panva/jose, an independent JOSE implementation, for the interop tests.
// Reads one JSON request on stdin, writes one JSON answer on stdout.
//   {"op":"decrypt","jwk":{...},"token":"..."}            -> {"header":{...},"plaintext":"..."}
//   {"op":"encrypt","jwk":{...},"header":{...},"plaintext":"..."} -> {"token":"..."}
//   {"op":"decrypt_set","jwks":{"keys":[...]},"token":"..."} -> as decrypt, the key picked
//     from the JWK Set by the header's kid and imported with importJWK
import { CompactEncrypt, compactDecrypt, base64url, importJWK } from 'jose';

const input = await new Promise((resolve, reject) => {
  let data = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (c) => { data += c; });
  process.stdin.on('end', () => resolve(data));
  process.stdin.on('error', reject);
});
const req = JSON.parse(input);
const key = req.jwk ? base64url.decode(req.jwk.k) : undefined;
if (req.op === 'decrypt_set') {
  const { plaintext, protectedHeader } = await compactDecrypt(req.token, async (header) => {
    const jwk = req.jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk) throw new Error(`no key ${header.kid} in the set`);
    return importJWK(jwk, 'dir');
  }, { keyManagementAlgorithms: ['dir'] });
  process.stdout.write(JSON.stringify({
    header: protectedHeader,
    plaintext: new TextDecoder().decode(plaintext),
  }));
} else if (req.op === 'decrypt') {
  const { plaintext, protectedHeader } = await compactDecrypt(req.token, key, {
    keyManagementAlgorithms: ['dir'],
  });
  process.stdout.write(JSON.stringify({
    header: protectedHeader,
    plaintext: new TextDecoder().decode(plaintext),
  }));
} else if (req.op === 'encrypt') {
  const token = await new CompactEncrypt(new TextEncoder().encode(req.plaintext))
    .setProtectedHeader(req.header)
    .encrypt(key);
  process.stdout.write(JSON.stringify({ token }));
} else {
  throw new Error(`unknown op ${req.op}`);
}
