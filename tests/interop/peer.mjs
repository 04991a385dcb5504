// An independent RLPx peer for Tern's interop tests, built on @ethereumjs/devp2p.
//
//   node peer.mjs listen [OPTIONS]        listens on 127.0.0.1 (random port), prints its enode
//   node peer.mjs dial ENODE [OPTIONS]    dials ENODE
//
// OPTIONS: --genesis FILE --genesis-hash 0x…   run the eth/68 Status exchange on the chain
//          of that geth-style genesis (the hash is what both Status and fork id use)
//          --fetch JSON   after Status, send these requests one by one, e.g.
//            [{"headers":{"start":1,"limit":5,"skip":1,"reverse":false}},
//             {"headers":{"start":"0x…hash","limit":3,"skip":0,"reverse":true}},
//             {"bodies":["0x…hash", …]}]
//          and print {"event":"response","index":i,"hashes":[…]} for each: keccak256 of
//          every returned header or body RLP (request ids are matched here)
//          --await-txs N   after Status, print transaction gossip as it arrives —
//            {"event":"tx_hashes","types":[…],"sizes":[…],"hashes":[…]} per
//            NewPooledTransactionHashes, {"event":"txs","hashes":[…]} per Transactions
//            (keccak256 of each transaction's EIP-2718 bytes) — until N distinct hashes
//            were seen, then exit 0
//
// Prints one JSON object per line on stdout:
//   {"event":"listening","enode":"enode://…"}
//   {"event":"hello","clientId":"…","id":"<hex>","protocolVersion":5,"caps":["eth/68"]}
//   {"event":"status","networkId":N,"genesisHash":"0x…","forkHash":"0x…","forkNext":N}
//   {"event":"error","message":"…"} / {"event":"disconnect","reason":N}
// and exits 0 once it has seen the remote Hello (or, with --genesis, the remote Status,
// validated by ethereumjs itself), after a short grace period so the other side sees ours;
// 1 on error or disconnect, 2 on timeout.
import { ETH, RLPx } from '@ethereumjs/devp2p'
import { Common, Mainnet, createCommonFromGethGenesis } from '@ethereumjs/common'
import { bigIntToBytes, bytesToBigInt, bytesToHex, bytesToUnprefixedHex, hexToBytes, randomBytes } from '@ethereumjs/util'
import { readFileSync } from 'node:fs'
import { RLP } from '@ethereumjs/rlp'
import { keccak256 } from 'ethereum-cryptography/keccak.js'

const print = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const args = process.argv.slice(2)
const mode = args[0]
const arg = mode === 'dial' ? args[1] : undefined
const option = (name) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const TIMEOUT_MS = 20000

const fetchSpec = option('--fetch') ? JSON.parse(option('--fetch')) : undefined
const awaitTxs = option('--await-txs') ? Number(option('--await-txs')) : undefined
const genesisFile = option('--genesis')
const genesisHash = option('--genesis-hash')
const genesis = genesisFile ? JSON.parse(readFileSync(genesisFile, 'utf8')) : undefined
const common = genesis
  ? createCommonFromGethGenesis(genesis, { chain: 'tern-interop', genesisHash: hexToBytes(genesisHash) })
  : new Common({ chain: Mainnet })
const rlpx = new RLPx(randomBytes(32), {
  dpt: null,
  maxPeers: 5,
  capabilities: [ETH.eth68],
  common,
  clientId: new TextEncoder().encode('ethereumjs-devp2p/interop-test'),
  listenPort: null,
})

let done = false
const finish = (code) => {
  if (done) return
  done = true
  setTimeout(() => {
    try { rlpx.destroy() } catch {}
    process.exit(code)
  }, 500)
}

rlpx.events.on('peer:added', (peer) => {
  // ethereumjs leaves Nagle's algorithm on; every small write would wait otherwise.
  peer._socket?.setNoDelay?.(true)
  const hello = peer.getHelloMessage()
  print({
    event: 'hello',
    clientId: hello.clientId,
    id: bytesToUnprefixedHex(hello.id),
    protocolVersion: hello.protocolVersion,
    caps: hello.capabilities.map((c) => `${c.name}/${c.version}`),
  })
  if (!genesis) return finish(0)
  const eth = peer.getProtocols().find((p) => p instanceof ETH)
  eth.events.on('status', (status) => {
    print({
      event: 'status',
      networkId: Number(bytesToBigInt(status.chainId)),
      genesisHash: bytesToHex(status.genesisHash),
      forkHash: bytesToHex(status.forkId[0]),
      forkNext: Number(bytesToBigInt(status.forkId[1])),
    })
    if (awaitTxs !== undefined) watchTxs(eth)
    else if (fetchSpec) fetchAll(eth).then(() => finish(0), (err) => {
      print({ event: 'error', message: String(err?.message ?? err) })
      finish(1)
    })
    else finish(0)
  })
  try {
    eth.sendStatus({
      td: bigIntToBytes(BigInt(genesis.difficulty)),
      bestHash: hexToBytes(genesisHash),
      genesisHash: hexToBytes(genesisHash),
    })
  } catch (err) {
    print({ event: 'error', message: String(err?.message ?? err) })
    finish(1)
  }
})
// Prints transaction gossip until --await-txs distinct hashes were seen.
function watchTxs(eth) {
  const seen = new Set()
  const saw = (hashes) => {
    hashes.forEach((h) => seen.add(h))
    if (seen.size >= awaitTxs) finish(0)
  }
  eth.events.on('message', (code, payload) => {
    if (code === 0x08) {
      const [types, sizes, hashes] = payload
      const hex = hashes.map((h) => bytesToHex(h))
      print({ event: 'tx_hashes', types: Array.from(types), sizes: sizes.map((x) => Number(bytesToBigInt(x))), hashes: hex })
      saw(hex)
    } else if (code === 0x02) {
      // A typed transaction is a string (type ‖ payload); a legacy one a list.
      const hex = payload.map((tx) => bytesToHex(keccak256(tx instanceof Uint8Array ? tx : RLP.encode(tx))))
      print({ event: 'txs', hashes: hex })
      saw(hex)
    }
  })
}

// Sends each request of --fetch in turn and prints the hashes of what came back.
// RLP integers are minimal: zero is the empty string.
const int = (n) => (BigInt(n) === 0n ? new Uint8Array() : bigIntToBytes(BigInt(n)))

async function fetchAll(eth) {
  const pending = new Map()
  eth.events.on('message', (code, payload) => {
    const id = Number(bytesToBigInt(payload[0]))
    const resolve = pending.get(id)
    if (resolve) {
      pending.delete(id)
      resolve({ code, items: payload[1] })
    }
  })
  for (const [index, req] of fetchSpec.entries()) {
    const id = 1000 + index
    let code, body
    if (req.headers) {
      const h = req.headers
      const start = typeof h.start === 'string' ? hexToBytes(h.start) : int(h.start)
      code = 0x03
      body = [start, int(h.limit), int(h.skip), int(h.reverse ? 1 : 0)]
    } else {
      code = 0x05
      body = req.bodies.map((x) => hexToBytes(x))
    }
    const response = new Promise((resolve) => pending.set(id, resolve))
    eth.sendMessage(code, [int(id), body])
    const { code: got, items } = await response
    if (got !== code + 1) throw new Error(`request ${index}: answered with message ${got}`)
    print({ event: 'response', index, hashes: items.map((item) => bytesToHex(keccak256(RLP.encode(item)))) })
  }
}

rlpx.events.on('peer:removed', (_peer, reason) => {
  print({ event: 'disconnect', reason: typeof reason === 'number' ? reason : String(reason) })
  finish(1)
})
rlpx.events.on('peer:error', (_peer, err) => {
  print({ event: 'error', message: String(err?.message ?? err) })
  finish(1)
})
rlpx.events.on('error', (err) => {
  print({ event: 'error', message: String(err?.message ?? err) })
  finish(1)
})
setTimeout(() => {
  print({ event: 'error', message: 'timeout' })
  finish(2)
}, TIMEOUT_MS)

if (mode === 'listen') {
  rlpx.events.on('listening', () => {
    const port = rlpx._server.address().port
    print({ event: 'listening', enode: `enode://${bytesToUnprefixedHex(rlpx.id)}@127.0.0.1:${port}` })
  })
  rlpx.listen(0, '127.0.0.1')
} else if (mode === 'dial') {
  const m = /^enode:\/\/([0-9a-f]{128})@([^:]+):(\d+)/.exec(arg ?? '')
  if (!m) {
    print({ event: 'error', message: `bad enode ${arg}` })
    process.exit(1)
  }
  rlpx.connect({ id: hexToBytes(`0x${m[1]}`), address: m[2], tcpPort: Number(m[3]) }).catch((err) => {
    print({ event: 'error', message: String(err?.message ?? err) })
    finish(1)
  })
} else {
  print({ event: 'error', message: 'usage: peer.mjs listen | dial ENODE' })
  process.exit(1)
}
