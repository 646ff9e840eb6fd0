// SPDX-License-Identifier: MIT
// An EIP-7702 delegate for the tests: an account delegated to it answers whoAmI() with its own address
// and counts calls in its own storage.
pragma solidity 0.8.28;

contract Delegate7702 {
    uint256 public pings;
    event Pinged(address indexed account, uint256 count);

    function ping() external returns (uint256) {
        pings += 1;
        emit Pinged(address(this), pings);
        return pings;
    }

    function whoAmI() external view returns (address) {
        return address(this);
    }
}
