/* protocol core: header */
