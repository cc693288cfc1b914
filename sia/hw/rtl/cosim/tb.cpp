// Thin Verilator testbench for sia_top: reads launches (tile packets) from a text
// file, drives AXI4-Lite START, streams the packet with random TVALID stalls, takes
// the output with random TREADY stalls, reads CYCLES/SOPS/IMAGE_OPS/STATUS.
// usage: Vsia IN OUT SEED P_VALID P_READY
#include "Vsia_top.h"
#include "verilated.h"
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

static Vsia_top* top;
static uint64_t ncycles = 0;

static void tick() {
    top->clk = 1; top->eval();
    top->clk = 0; top->eval();
    ncycles++;
}

// The stream loop's clock edge: the falling edge is evaluated together with the next
// cycle's inputs (two eval() per cycle instead of three: each eval() re-runs the logic
// that depends on the top-level inputs, ~7 % of the time per call).
static void rise() {
    top->clk = 1; top->eval();
    top->clk = 0;
    ncycles++;
}

static void axil_write(uint32_t addr, uint32_t data) {
    top->s_axil_awaddr = addr; top->s_axil_awvalid = 1;
    top->s_axil_wdata = data; top->s_axil_wvalid = 1; top->s_axil_wstrb = 0xF;
    top->s_axil_bready = 1;
    top->eval();
    while (!top->s_axil_awready) { tick(); }
    tick();
    top->s_axil_awvalid = 0; top->s_axil_wvalid = 0; top->eval();
    while (!top->s_axil_bvalid) tick();
    tick();
    top->s_axil_bready = 0; top->eval();
}

static uint32_t axil_read(uint32_t addr) {
    top->s_axil_araddr = addr; top->s_axil_arvalid = 1; top->s_axil_rready = 1; top->eval();
    while (!top->s_axil_arready) tick();
    tick();
    top->s_axil_arvalid = 0; top->eval();
    while (!top->s_axil_rvalid) tick();
    uint32_t v = top->s_axil_rdata;
    tick();
    top->s_axil_rready = 0; top->eval();
    return v;
}

int main(int argc, char** argv) {
    if (argc < 6) { fprintf(stderr, "usage: Vsia IN OUT SEED P_VALID P_READY\n"); return 2; }
    FILE* fi = fopen(argv[1], "r");
    FILE* fo = fopen(argv[2], "w");
    if (!fi || !fo) { fprintf(stderr, "cannot open files\n"); return 2; }
    std::mt19937_64 rng(strtoull(argv[3], 0, 10));
    double pv = atof(argv[4]), pr = atof(argv[5]);
    std::uniform_real_distribution<double> U(0.0, 1.0);
    Verilated::commandArgs(argc, argv);
    top = new Vsia_top;
    top->clk = 0; top->rst = 1; top->eval();
    tick(); tick();
    top->rst = 0; top->eval();
    int nl = 0;
    if (fscanf(fi, "%d", &nl) != 1) return 2;
    auto t0 = std::chrono::steady_clock::now();
    uint64_t busy_cycles = 0;
    for (int l = 0; l < nl; l++) {
        int nb = 0;
        if (fscanf(fi, "%d", &nb) != 1) return 2;
        std::vector<uint64_t> in(nb), out;
        for (int i = 0; i < nb; i++) fscanf(fi, "%" SCNx64, &in[i]);
        axil_write(0x08, 1);
        size_t idx = 0;
        uint64_t guard = 0, c0 = ncycles;
        bool got_last = false;
        uint64_t stuck = 0;
        while (!got_last) {
            bool v = idx < in.size() && (pv >= 1.0 || U(rng) < pv);
            top->s_axis_tvalid = v;
            top->s_axis_tdata = v ? in[idx] : 0;
            top->s_axis_tlast = v && idx + 1 == in.size();
            top->m_axis_tready = pr >= 1.0 || U(rng) < pr;
            top->eval();
            bool fin = v && top->s_axis_tready;
            if (top->m_axis_tvalid && top->m_axis_tready) {
                out.push_back(top->m_axis_tdata);
                if (top->m_axis_tlast) got_last = true;
            }
            rise();
            if (fin) idx++;
            if (++guard > 400000000ULL) { fprintf(stderr, "timeout in launch %d\n", l); return 3; }
            // input not taken for a long time while data is left: error state?
            stuck = (idx < in.size() && !fin) ? stuck + 1 : 0;
            if (stuck > 64) {
                top->s_axis_tvalid = 0; top->m_axis_tready = 0; top->eval();
                if (axil_read(0x0C) & 4) break;  // error: stop this launch
                stuck = 0;
            }
        }
        top->s_axis_tvalid = 0; top->m_axis_tready = 0; top->eval();
        busy_cycles += ncycles - c0;
        uint64_t cyc = axil_read(0x10) | ((uint64_t)axil_read(0x14) << 32);
        uint64_t sops = axil_read(0x18) | ((uint64_t)axil_read(0x1C) << 32);
        uint64_t iops = axil_read(0x20) | ((uint64_t)axil_read(0x24) << 32);
        uint32_t st = axil_read(0x0C);
        fprintf(fo, "R %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %zu\n", cyc, sops, iops, st, out.size());
        for (auto b : out) fprintf(fo, "%" PRIx64 "\n", b);
    }
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fprintf(fo, "S %" PRIu64 " %.6f\n", ncycles, dt);
    fclose(fo);
    top->final();
    delete top;
    return 0;
}
