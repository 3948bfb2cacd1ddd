/* placeholder: replaced by the tables work (kmip/spec/gen.py) */
