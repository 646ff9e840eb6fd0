// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IERC20Like {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// A router that moves the caller's tokens with an allowance the caller gave it: its calldata is not
/// a token call, so only a simulation shows what it does to the caller's balances.
contract Router {
    function sweep(address token, address to, uint256 amount) external {
        require(IERC20Like(token).transferFrom(msg.sender, to, amount), "transfer failed");
    }

    function multicall(bytes[] calldata calls) external {
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, bytes memory ret) = address(this).delegatecall(calls[i]);
            if (!ok) {
                assembly {
                    revert(add(ret, 32), mload(ret))
                }
            }
        }
    }
}
