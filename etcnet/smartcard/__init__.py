"""etcnet.smartcard: the pure-Python smart-card layer (no Django).

- ``apdu``: ISO 7816-4 command/response APDUs and status words
- ``codec``: BCD, GB2312 text, integers, hex
- ``files``: user-card files 0015/0016/0019, the purse log, OBU system and vehicle files
- ``crypto``: key diversification, MACs, purchase and load MAC1/MAC2/TAC (3DES, SM4)
- ``emulator``: software user card, OBU ESAM and PSAM speaking real APDUs
- ``transport``: ``transmit(apdu) -> response`` over the emulator or PC/SC
- ``ops``: read, personalise, activate, load, purchase
- ``cli``: ``etcnet crypto …`` and ``etcnet card …``

See docs/smartcard.md.
"""
