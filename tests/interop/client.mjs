// A JSON-RPC client test with a real client library (ethers v6): reads eth_blockNumber
// and a full block (with transactions) from a fullnode and from the validator, and
// checks that the fields match.
//
//   node client.mjs FULLNODE_URL VALIDATOR_URL BLOCK_NUMBER
//
// Prints {"ok":true,...} and exits 0 when everything matches; exits 1 otherwise.
import { JsonRpcProvider } from 'ethers'

const [fullUrl, validatorUrl, numberArg] = process.argv.slice(2)
const full = new JsonRpcProvider(fullUrl, undefined, { staticNetwork: true })
const validator = new JsonRpcProvider(validatorUrl, undefined, { staticNetwork: true })

const fail = (message) => {
  process.stdout.write(JSON.stringify({ ok: false, message }) + '\n')
  process.exit(1)
}

try {
  const head = await full.getBlockNumber()
  const number = Number(numberArg)
  if (head < number) fail(`fullnode head ${head} below ${number}`)
  const network = await full.getNetwork()
  const [a, b] = await Promise.all([full.getBlock(number, true), validator.getBlock(number, true)])
  if (!a || !b) fail('block missing')
  for (const field of ['hash', 'parentHash', 'number', 'timestamp', 'gasLimit', 'gasUsed', 'miner', 'extraData', 'baseFeePerGas', 'difficulty', 'stateRoot']) {
    if (String(a[field]) !== String(b[field])) fail(`${field}: ${a[field]} != ${b[field]}`)
  }
  const txsA = a.prefetchedTransactions
  const txsB = b.prefetchedTransactions
  if (txsA.length !== txsB.length || txsA.length === 0) fail(`transactions: ${txsA.length} vs ${txsB.length}`)
  for (let i = 0; i < txsA.length; i++) {
    for (const field of ['hash', 'from', 'to', 'nonce', 'value', 'gasLimit', 'maxFeePerGas', 'type', 'chainId']) {
      if (String(txsA[i][field]) !== String(txsB[i][field])) fail(`tx ${i} ${field}: ${txsA[i][field]} != ${txsB[i][field]}`)
    }
  }
  // The transaction by hash agrees with the block's copy.
  const tx = await full.getTransaction(txsA[0].hash)
  if (!tx || tx.blockNumber !== number || tx.from !== txsA[0].from) fail('getTransaction mismatch')
  process.stdout.write(JSON.stringify({ ok: true, head, chainId: Number(network.chainId), hash: a.hash, txs: txsA.length, from: txsA[0].from }) + '\n')
  process.exit(0)
} catch (err) {
  fail(String(err?.message ?? err))
}
