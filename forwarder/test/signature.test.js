import assert from 'node:assert/strict'
import test from 'node:test'
import { decodeSecret, isValidSecret, sign, signatureHeaders } from '../src/signature.js'

const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
}

test('matches the Standard Webhooks published test vector', () => {
  const { secret, id, timestamp, body, signature } = VECTOR
  assert.equal(sign(secret, id, timestamp, body), signature)
  assert.equal(sign(decodeSecret(secret), id, String(timestamp), Buffer.from(body)), signature)
  assert.deepEqual(signatureHeaders(secret, id, timestamp, body), {
    'webhook-id': id,
    'webhook-timestamp': '1614265330',
    'webhook-signature': signature
  })
})

test('the whsec_ prefix is optional; the key is the base64-decoded rest', () => {
  const bare = VECTOR.secret.slice('whsec_'.length)
  assert.deepEqual(decodeSecret(bare), Buffer.from(bare, 'base64'))
  assert.equal(sign(bare, VECTOR.id, VECTOR.timestamp, VECTOR.body), VECTOR.signature)
})

test('a different timestamp or body changes the signature', () => {
  const { secret, id, timestamp, body, signature } = VECTOR
  assert.notEqual(sign(secret, id, timestamp + 1, body), signature)
  assert.notEqual(sign(secret, id, timestamp, body + ' '), signature)
})

test('malformed secrets are rejected without echoing them', () => {
  for (const bad of ['', 'whsec_', 'whsec_not base64!', 'whsec_abc', undefined]) {
    assert.equal(isValidSecret(bad), false, String(bad))
    assert.throws(() => decodeSecret(bad), (error) => error instanceof TypeError && !/not base64!/.test(error.message))
  }
  assert.equal(isValidSecret(VECTOR.secret), true)
})
