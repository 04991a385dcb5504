// An independent discv4 node for Tern's interop tests: @ethereumjs/devp2p's DPT.
//
//   node dpt.mjs [BOOTNODE_ENODE]   binds UDP on 127.0.0.1 (random port), bootstraps from
//                                   BOOTNODE_ENODE (its ?discport= or TCP port) if given
//
// Prints one JSON object per line on stdout:
//   {"event":"listening","id":"<hex node id>","udp":PORT}
//   {"event":"table","ids":["<hex>", …]}   whenever its table changed (checked every
//                                           100 ms)
//   {"event":"error","message":"…"}        errors DPT reports (it does not know EIP-868
//                                           ENRRequests, for one, and says so here)
// Runs until killed (or 60 s).
import { DPT } from '@ethereumjs/devp2p'
import { bytesToUnprefixedHex, hexToBytes, randomBytes } from '@ethereumjs/util'
import { secp256k1 } from 'ethereum-cryptography/secp256k1.js'

const print = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const key = randomBytes(32)
const id = secp256k1.getPublicKey(key, false).subarray(1)

const dpt = new DPT(key, {
  endpoint: { address: '127.0.0.1', udpPort: null, tcpPort: null },
  // Ask every table node for neighbours every second (10 slices of 100 ms).
  refreshInterval: 1000,
  shouldGetDnsPeers: false,
  timeout: 2000,
})
dpt.events.on('error', (e) => print({ event: 'error', message: String(e?.message ?? e) }))
let last = ''
setInterval(() => {
  const ids = dpt.getPeers().map((p) => bytesToUnprefixedHex(p.id)).sort()
  if (ids.join() !== last) {
    last = ids.join()
    print({ event: 'table', ids })
  }
}, 100)
dpt.events.on('listening', () => {
  const udp = dpt._server._socket.address().port
  dpt._server._endpoint.udpPort = udp
  print({ event: 'listening', id: bytesToUnprefixedHex(id), udp })
  const boot = process.argv[2]
  if (boot) {
    const m = /^enode:\/\/([0-9a-f]{128})@([^:]+):(\d+)(?:\?discport=(\d+))?$/.exec(boot)
    if (!m) throw new Error(`not an enode URL: ${boot}`)
    const udpPort = Number(m[4] ?? m[3])
    dpt.bootstrap({ id: hexToBytes('0x' + m[1]), address: m[2], udpPort, tcpPort: Number(m[3]) })
  }
})
dpt.bind(0, '127.0.0.1')
setTimeout(() => process.exit(2), 60000)
