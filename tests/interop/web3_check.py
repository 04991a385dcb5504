"""web3.py against a Tern node: sign a transfer locally, send it raw, wait for the
receipt, read balances and the block. Prints one JSON object per step; exits non-zero on
any failure.

    python web3_check.py --rpc http://127.0.0.1:8545 --key 0x...
"""
import argparse
import json
import secrets

from eth_account import Account
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware


def say(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rpc", required=True)
    p.add_argument("--key", required=True)
    args = p.parse_args()

    w3 = Web3(Web3.HTTPProvider(args.rpc))
    # Clique's extraData holds the signers and the seal (as on geth's Clique networks).
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    assert w3.is_connected(), "not connected"
    sender = Account.from_key(args.key)
    chain_id = w3.eth.chain_id
    say("connected", chainId=chain_id, block=w3.eth.block_number, client=w3.client_version)

    to = Web3.to_checksum_address("0x" + secrets.token_hex(20))
    before = w3.eth.get_balance(sender.address)
    latest = w3.eth.get_block("latest")
    tip = w3.eth.max_priority_fee
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "to": to,
        "value": 12345,
        "gas": w3.eth.estimate_gas({"from": sender.address, "to": to, "value": 12345}),
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 2 * latest["baseFeePerGas"] + tip,
    }
    signed = sender.sign_transaction(tx)
    sent = w3.eth.send_raw_transaction(signed.raw_transaction)
    assert sent == signed.hash, f"hash {sent.hex()} != {signed.hash.hex()}"
    receipt = w3.eth.wait_for_transaction_receipt(sent, timeout=60, poll_latency=0.25)
    assert receipt["status"] == 1, receipt
    assert receipt["gasUsed"] == 21000, receipt
    assert w3.eth.get_balance(to) == 12345
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(sender.address) == before - 12345 - fee
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    assert block["transactions"][receipt["transactionIndex"]]["hash"] == sent
    fetched = w3.eth.get_transaction(sent)
    assert fetched["from"] == sender.address and fetched["value"] == 12345
    say("receipt", hash=sent.hex(), block=receipt["blockNumber"], gasUsed=receipt["gasUsed"])
    say("done")


if __name__ == "__main__":
    main()
