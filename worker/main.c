/* rayc-worker: started by a raylet; the work is done by librayc's core worker. */
int rayc_worker_main(int argc, char **argv);

int main(int argc, char **argv)
{
  return rayc_worker_main(argc, argv);
}
