// SPDX-License-Identifier: MIT
// A minimal Permit2-compatible contract for the tests, placed at Permit2's canonical address with
// anvil_setCode: the same EIP-712 domain (name "Permit2", chainId, verifyingContract; no version) and
// the same type strings as Uniswap's Permit2, with AllowanceTransfer's permit(owner, PermitSingle, sig) +
// transferFrom(from, to, amount, token) and SignatureTransfer's permitTransferFrom. No constructor and
// no immutables: anvil_setCode installs runtime code only.
pragma solidity 0.8.28;

interface IERC20Min {
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

contract MiniPermit2 {
    struct PermitDetails { address token; uint160 amount; uint48 expiration; uint48 nonce; }
    struct PermitSingle { PermitDetails details; address spender; uint256 sigDeadline; }
    struct TokenPermissions { address token; uint256 amount; }
    struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }
    struct SignatureTransferDetails { address to; uint256 requestedAmount; }
    struct PackedAllowance { uint160 amount; uint48 expiration; uint48 nonce; }

    bytes32 public constant PERMIT_DETAILS_TYPEHASH =
        keccak256("PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)");
    bytes32 public constant PERMIT_SINGLE_TYPEHASH = keccak256(
        "PermitSingle(PermitDetails details,address spender,uint256 sigDeadline)PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)");
    bytes32 public constant TOKEN_PERMISSIONS_TYPEHASH = keccak256("TokenPermissions(address token,uint256 amount)");
    bytes32 public constant PERMIT_TRANSFER_FROM_TYPEHASH = keccak256(
        "PermitTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline)TokenPermissions(address token,uint256 amount)");

    mapping(address => mapping(address => mapping(address => PackedAllowance))) public allowance;
    mapping(address => mapping(uint256 => bool)) public usedNonces;

    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(abi.encode(
            keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)"),
            keccak256("Permit2"), block.chainid, address(this)));
    }

    function permit(address owner, PermitSingle calldata p, bytes calldata signature) external {
        require(block.timestamp <= p.sigDeadline, "SignatureExpired");
        PackedAllowance storage a = allowance[owner][p.details.token][p.spender];
        require(a.nonce == p.details.nonce, "InvalidNonce");
        bytes32 detailsHash = keccak256(abi.encode(PERMIT_DETAILS_TYPEHASH, p.details));
        bytes32 structHash = keccak256(abi.encode(PERMIT_SINGLE_TYPEHASH, detailsHash, p.spender, p.sigDeadline));
        _verify(structHash, signature, owner);
        a.amount = p.details.amount;
        a.expiration = p.details.expiration == 0 ? uint48(block.timestamp) : p.details.expiration;
        a.nonce = p.details.nonce + 1;
    }

    function transferFrom(address from, address to, uint160 amount, address token) external {
        PackedAllowance storage a = allowance[from][token][msg.sender];
        require(block.timestamp <= a.expiration, "AllowanceExpired");
        if (a.amount != type(uint160).max) {
            require(a.amount >= amount, "InsufficientAllowance");
            a.amount -= amount;
        }
        require(IERC20Min(token).transferFrom(from, to, amount), "transfer failed");
    }

    function permitTransferFrom(
        PermitTransferFrom calldata p, SignatureTransferDetails calldata d, address owner, bytes calldata signature
    ) external {
        require(block.timestamp <= p.deadline, "SignatureExpired");
        require(d.requestedAmount <= p.permitted.amount, "InvalidAmount");
        require(!usedNonces[owner][p.nonce], "InvalidNonce");
        usedNonces[owner][p.nonce] = true;
        bytes32 permHash = keccak256(abi.encode(TOKEN_PERMISSIONS_TYPEHASH, p.permitted));
        bytes32 structHash = keccak256(abi.encode(PERMIT_TRANSFER_FROM_TYPEHASH, permHash, msg.sender, p.nonce, p.deadline));
        _verify(structHash, signature, owner);
        require(IERC20Min(p.permitted.token).transferFrom(owner, d.to, d.requestedAmount), "transfer failed");
    }

    function _verify(bytes32 structHash, bytes calldata signature, address owner) private view {
        require(signature.length == 65, "InvalidSignatureLength");
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR(), structHash));
        address signer = ecrecover(digest, v, r, s);
        require(signer != address(0) && signer == owner, "InvalidSigner");
    }
}
