// SPDX-License-Identifier: MIT
// Calls that fail in each of the ways a simulation must report, and one that moves ETH internally.
pragma solidity 0.8.28;

contract Failures {
    error Unauthorized(address caller, uint256 code);

    uint256 public counter;

    /// Reverts with Error(string).
    function failWithReason() external {
        counter += 1;
        revert("Failures: not allowed");
    }

    /// Reverts with a custom error: selector + ABI-encoded arguments.
    function failWithCustomError(uint256 code) external {
        counter += 1;
        revert Unauthorized(msg.sender, code);
    }

    /// Loops until the transaction runs out of gas.
    function burnGas() external {
        while (true) {
            counter += 1;
        }
    }

    /// Panic(0x12) when b == 0.
    function divide(uint256 a, uint256 b) external returns (uint256) {
        counter += 1;
        return a / b;
    }

    /// Succeeds and changes state.
    function bump() external {
        counter += 1;
    }

    /// Forwards the attached ETH to `to` (an internal value transfer).
    function forward(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "Failures: forward failed");
    }
}
