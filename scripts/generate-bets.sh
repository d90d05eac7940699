#!/usr/bin/env bash
# Deterministic bet-data generator for the Lotería Nacional agencies.
#
# Usage: scripts/generate-bets.sh <agency> <rows> [seed] [winners]
#
# Writes <rows> CSV rows to stdout, CRLF line endings, no header:
#   first,last,document,YYYY-MM-DD,number
#
#   agency   agency number (positive integer); mixed into the seed so that
#            agencies generated with the same seed differ
#   rows     number of rows (0 or more)
#   seed     non-negative integer; empty or "-" means the default seed
#   winners  exact number of rows whose number is 7574 (0..rows); empty or
#            "-" means a value derived from the seed (2..8, capped at rows).
#            No other row ever gets 7574.
#
# Output depends only on the arguments: the pseudo-random generator is a
# Park-Miller "minimal standard" LCG (x = 48271 * x mod (2^31 - 1)) written in
# awk arithmetic whose intermediate values stay below 2^53, so every awk
# (mawk, gawk, busybox) produces byte-identical output. awk's rand() and bash's
# $RANDOM are not used.
#
# Documents are 8-digit strings, unique within one output; about 2% of them
# have leading zeros (00000001..09999999), the rest are 10000000..45999999.
# Birthdates are uniform over the real calendar days 1940-01-01..2005-12-31.
set -euo pipefail

readonly DEFAULT_SEED=20250417

usage() {
    echo "usage: $0 <agency> <rows> [seed] [winners]" >&2
    echo "  agency: positive integer; rows: integer >= 0;" >&2
    echo "  seed: integer >= 0 or '-' (default); winners: 0..rows or '-' (default)" >&2
    exit 2
}

is_uint() { [[ $1 =~ ^[0-9]{1,9}$ ]]; }

[[ $# -ge 2 && $# -le 4 ]] || usage
agency=$1
rows=$2
seed=${3:--}
winners=${4:--}

is_uint "$agency" && (( 10#$agency >= 1 )) || { echo "$0: bad agency '$agency'" >&2; usage; }
is_uint "$rows" || { echo "$0: bad rows '$rows'" >&2; usage; }
[[ $seed == - ]] && seed=$DEFAULT_SEED
is_uint "$seed" || { echo "$0: bad seed '$seed'" >&2; usage; }
if [[ $winners != - ]]; then
    is_uint "$winners" || { echo "$0: bad winners '$winners'" >&2; usage; }
    (( 10#$winners <= 10#$rows )) || { echo "$0: winners ($winners) > rows ($rows)" >&2; usage; }
    winners=$((10#$winners))
else
    winners=-1
fi

# Unique documents: 46M possible values; refuse absurd sizes instead of looping.
(( 10#$rows <= 20000000 )) || { echo "$0: rows too large (max 20000000)" >&2; usage; }

export LC_ALL=C
exec awk -v agency="$((10#$agency))" -v rows="$((10#$rows))" \
         -v seed="$((10#$seed))" -v winners="$winners" '
function rnd() {                 # next state, 1..M-1; 48271 * x < 2^47
    state = (48271 * state) % M
    return state
}
function below(n) {              # uniform integer in 0..n-1
    return int(rnd() / M * n)
}
function leap(y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

BEGIN {
    M = 2147483647
    CRLF = "\r\n"

    nf = split("María José|Juan Pablo|Ana Laura|Juan Martín|Luis Ángel|María Belén|" \
               "José Luis|Miguel Ángel|María Inés|Juan Ignacio|Ana Sofía|Carlos Andrés|" \
               "Martín|Sofía|Agustín|Lucía|Matías|Valentina|Joaquín|Camila|Tomás|Martina|" \
               "Nicolás|Florencia|Sebastián|Julieta|Ramón|Inés|Germán|Belén|Iván|Mónica|" \
               "Andrés|Verónica|Ángel|Rocío|Julián|Mariana|Fermín|Dolores|Benjamín|Noelia|" \
               "Gastón|Lourdes|Facundo|Milagros|Santiago|Ximena|Ezequiel|Candela|Héctor|" \
               "Renée|Raúl|Graciela|Óscar|Araceli|Nahuel|Begoña|Cristián|Zoé|Félix|Elías",
               FIRST, "|")
    nl = split("Gómez|Muñoz|Peña|Ibáñez|Fernández|Rodríguez|González|López|Martínez|Pérez|" \
               "García|Sánchez|Romero|Díaz|Álvarez|Benítez|Acuña|Suárez|Giménez|Domínguez|" \
               "Vázquez|Ramírez|Ruiz|Gutiérrez|Núñez|Ortiz|Castaño|Medina|Sosa|Herrera|" \
               "Aguirre|Ríos|Córdoba|Ledesma|Quiñones|Ferreyra|Cáceres|Avendaño|Ojeda|Farías|" \
               "Méndez|Toledo|Villalba|Ibarra|Peñaloza|Montaño|Escobar|Cabañas|Zúñiga|Báez|" \
               "Maldonado|Ocampo|Del Río|De la Fuente|Saldaño|Mansilla|Carreño|Ordóñez|Rossi|Gaitán",
               LAST, "|")

    # Every real date from 1940-01-01 to 2005-12-31.
    split("31 28 31 30 31 30 31 31 30 31 30 31", mdays, " ")
    nd = 0
    for (y = 1940; y <= 2005; y++)
        for (m = 1; m <= 12; m++) {
            dim = mdays[m] + (m == 2 && leap(y))
            for (d = 1; d <= dim; d++)
                DATE[++nd] = sprintf("%04d-%02d-%02d", y, m, d)
        }

    # Mix seed and agency (all products < 2^53), then warm up.
    state = ((seed % M) * 69069 + (agency % M) * 2654435 + 12345) % M
    if (state == 0) state = 1
    for (i = 0; i < 16; i++) rnd()

    if (winners < 0) {
        winners = 2 + below(7)
        if (winners > rows) winners = rows
    }
    # Pick the winning row positions (distinct).
    for (i = 0; i < winners; ) {
        p = 1 + below(rows)
        if (!(p in WIN)) { WIN[p] = 1; i++ }
    }

    for (r = 1; r <= rows; r++) {
        first = FIRST[1 + below(nf)]
        last = LAST[1 + below(nl)]
        if (below(10) == 0)          # ~10% carry two surnames
            last = last " " LAST[1 + below(nl)]

        do {
            if (below(50) == 0)      # ~2%: leading zeros
                doc = sprintf("%08d", 1 + below(9999999))
            else
                doc = sprintf("%08d", 10000000 + below(36000000))
        } while (doc in USED)
        USED[doc] = 1

        date = DATE[1 + below(nd)]

        if (r in WIN)
            num = 7574
        else {
            num = below(9999)        # 0..9998, skipping 7574
            if (num >= 7574) num++
        }
        printf "%s,%s,%s,%s,%d%s", first, last, doc, date, num, CRLF
    }
}'
