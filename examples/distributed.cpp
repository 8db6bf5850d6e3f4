// Distributed training through the library: under `mpirun -np N`, each process reads its part of
// a CSV file and fit() trains one model with all of them; rank 0 saves it. Started without
// mpirun, the same program trains alone. Usage: distributed DATA.csv MODEL_OUT
// Exits 0 when every process ends with the same weights; 1, with one line from the process that
// failed, when the data or the run fails.
#include <chainrule/fit.hpp>
#include <chainrule/mpi.hpp>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  using namespace chainrule;
  if (argc != 3) return 2;
  mpi::Session session;  // MPI_Init under mpirun, nothing otherwise
  const Group* group = session.group();
  try {
    const Table part = group ? read_csv_shard(argv[1], {}, *group) : read_csv(argv[1]);

    FitOptions options;
    options.layers = {32};
    options.dtype = Dtype::float64;
    options.train.epochs = 5;
    options.group = group;
    const FitResult fitted = fit(part, options);

    // Every process holds the same model: the largest difference to the others' is 0.
    std::vector<double> mine = fitted.model.params, largest(mine.size());
    if (group) {
      std::vector<double> negated(mine.size());
      for (std::size_t i = 0; i < mine.size(); ++i)
        negated[i] = -mine[i];
      largest = mine;
      group->max(largest);
      group->max(negated);
      for (std::size_t i = 0; i < mine.size(); ++i)
        if (largest[i] != -negated[i]) return 1;
    }
    if (!group || group->rank() == 0) {
      save_model(fitted.model, argv[2]);
      const SplitMetrics& v = *fitted.model.metrics->validation;
      const std::string_view metric = to_string(v.metric);
      std::printf("trained on %zu rows with %d process(es): validation %.*s %.4f\n",
                  fitted.train_rows + fitted.validation_rows, group ? group->size() : 1,
                  int(metric.size()), metric.data(), v.value);
    }
  } catch (const PeerError&) {
    return 1;  // another process failed, and said why
  } catch (const Error& e) {
    std::fprintf(stderr, "distributed: %s\n", e.what());
    return 1;
  }
  return 0;
}
