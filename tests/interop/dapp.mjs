// A dapp developer's session against a Tern node, with the libraries they use:
// compile an ERC-20 with solc, deploy and use it with ethers v6 (HTTP and WebSocket),
// read it with viem. Prints one JSON object per step; exits non-zero on any failure.
//
//   node dapp.mjs --rpc http://127.0.0.1:8545 --ws ws://127.0.0.1:8545 --key 0x…
import { readFileSync } from "node:fs";
import solc from "solc";
import { ethers } from "ethers";
import { createPublicClient, http, parseAbiItem, defineChain } from "viem";

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) throw new Error(`--${name} is required`);
  return process.argv[i + 1];
};
const say = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));
const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
};

function compile() {
  const input = {
    language: "Solidity",
    sources: { "Token.sol": { content: readFileSync(new URL("./contracts/Token.sol", import.meta.url), "utf8") } },
    // London: the EVM a Clique dev chain runs (no PUSH0 before Shanghai).
    settings: { evmVersion: "london", outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === "error");
  if (errors.length) throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  const c = out.contracts["Token.sol"].Token;
  return { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
}

async function main() {
  const rpc = arg("rpc"), ws = arg("ws"), key = arg("key");
  const { abi, bytecode } = compile();
  say("compiled", { solc: solc.version(), bytes: (bytecode.length - 2) / 2 });

  const provider = new ethers.JsonRpcProvider(rpc, undefined, { polling: true, pollingInterval: 250 });
  const wallet = new ethers.Wallet(key, provider);
  const network = await provider.getNetwork();
  say("network", { chainId: Number(network.chainId), block: await provider.getBlockNumber() });

  const supply = ethers.parseUnits("1000000", 18);
  const factory = new ethers.ContractFactory(abi, bytecode, wallet);
  const token = await factory.deploy("Tern Token", "TERN", supply);
  const deployTx = token.deploymentTransaction();
  await token.waitForDeployment();
  const address = await token.getAddress();
  const deployReceipt = await provider.getTransactionReceipt(deployTx.hash);
  check(deployReceipt.status === 1 && deployReceipt.contractAddress === address, "deploy receipt");
  check((await provider.getCode(address)).length > 2, "code at the token address");
  say("deployed", { address, block: deployReceipt.blockNumber, gasUsed: deployReceipt.gasUsed.toString() });

  const bob = ethers.Wallet.createRandom().address;
  const amount = ethers.parseUnits("100", 18);
  const estimate = await token.transfer.estimateGas(bob, amount);
  const tx = await token.transfer(bob, amount);
  const receipt = await tx.wait();
  check(receipt.status === 1, "transfer succeeded");
  check(receipt.gasUsed <= estimate, `gas used ${receipt.gasUsed} within the estimate ${estimate}`);
  check((await token.balanceOf(bob)) === amount, "bob's balance");
  check((await token.balanceOf(wallet.address)) === supply - amount, "the deployer's balance");
  const parsed = receipt.logs.map((l) => token.interface.parseLog(l));
  check(parsed.length === 1 && parsed[0].name === "Transfer" && parsed[0].args.to === bob, "Transfer log in the receipt");
  say("transferred", { to: bob, block: receipt.blockNumber, gasUsed: receipt.gasUsed.toString(), estimate: estimate.toString() });

  const events = await token.queryFilter(token.filters.Transfer(null, bob), deployReceipt.blockNumber, "latest");
  check(events.length === 1 && events[0].transactionHash === receipt.hash, "getLogs finds the transfer");
  say("logs", { count: events.length });

  // A reverted call: ethers decodes the revert reason.
  const poor = new ethers.Contract(address, abi, new ethers.VoidSigner(bob, provider));
  let reason = null;
  try {
    await poor.transfer.staticCall(wallet.address, amount * 2n);
  } catch (e) {
    reason = e.reason;
  }
  check(reason === "insufficient balance", `revert reason, got ${reason}`);
  say("reverted", { reason });

  // A logs subscription over WebSocket sees the next transfer.
  const wsProvider = new ethers.WebSocketProvider(ws);
  const wsToken = new ethers.Contract(address, abi, wsProvider);
  // ethers hands a prepared filter's listener the event payload last (alone, here).
  const seen = new Promise((resolve) =>
    wsToken.on(wsToken.filters.Transfer(null, bob), (...args) => {
      const ev = args[args.length - 1];
      resolve({ to: ev.args[1], value: ev.args[2], hash: ev.log.transactionHash });
    }),
  );
  let head = null;
  const newHead = new Promise((resolve) => wsProvider.on("block", (n) => { head = n; resolve(n); }));
  // Give the subscriptions a moment to be registered server-side: wait for a head first.
  await newHead;
  const pendingHashes = new Set();
  let second = null;
  let sawPending;
  const pending = new Promise((resolve) => { sawPending = resolve; });
  await wsProvider.on("pending", (hash) => {
    pendingHashes.add(hash);
    if (second && pendingHashes.has(second.hash)) sawPending();
  });
  second = await token.transfer(bob, 1n);
  if (pendingHashes.has(second.hash)) sawPending();
  await pending;
  const got = await seen;
  check(got.hash === second.hash && got.to === bob && got.value === 1n, "the subscription saw the second transfer");
  await second.wait();
  say("subscribed", { hash: got.hash, head, pendingSeen: pendingHashes.size });
  await wsProvider.destroy();

  // viem reads the same state.
  const chain = defineChain({ id: Number(network.chainId), name: "tern", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [rpc] } } });
  const client = createPublicClient({ chain, transport: http(rpc) });
  const bobBalance = await client.readContract({ address, abi, functionName: "balanceOf", args: [bob] });
  check(bobBalance === amount + 1n, `viem reads bob's balance, got ${bobBalance}`);
  const viemLogs = await client.getLogs({ address, event: parseAbiItem("event Transfer(address indexed from, address indexed to, uint256 value)"), args: { to: bob }, fromBlock: BigInt(deployReceipt.blockNumber) });
  check(viemLogs.length === 2, `viem finds both transfers, got ${viemLogs.length}`);
  const viemReceipt = await client.getTransactionReceipt({ hash: receipt.hash });
  check(viemReceipt.status === "success", "viem reads the receipt");
  const block = await client.getBlock({ blockNumber: BigInt(receipt.blockNumber) });
  check(block.transactions.includes(receipt.hash), "viem reads the block");
  say("viem", { balance: bobBalance.toString(), logs: viemLogs.length, gasPrice: (await client.getGasPrice()).toString() });

  say("done", { token: address, bob });
}

main().then(
  () => process.exit(0),
  (e) => {
    say("error", { message: String(e && e.stack || e) });
    process.exit(1);
  },
);
